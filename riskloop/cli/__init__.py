"""The `riskloop` command line: one subcommand per job. Each command parses its options, calls one
library function (`riskloop.jobs`, or the registry and serving for `promote`, `serve` and `token`) and
prints; errors are one line on stderr with exit code 2."""

from __future__ import annotations

from collections.abc import Callable

import typer

from riskloop.cli import dashboard, data, demo, ingest, learn, model, score, serve

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="riskloop: predictive risk modelling with a learning loop, for community safety partnerships.",
)
commands: list[Callable[..., None]] = [
    data.generate,
    data.validate,
    data.features,
    data.splits,
    data.export_extracts,
    ingest.ingest,
    ingest.reidentify,
    model.train,
    model.promote,
    model.governance,
    model.transparency,
    model.explain,
    model.audit,
    score.score,
    learn.learn,
    dashboard.dashboard,
    learn.simulate,
    demo.demo,
    serve.serve,
    serve.example_request,
]
for command in commands:
    app.command()(command)

token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for `riskloop serve` (the file keeps only hashes).")
token_commands: dict[str, Callable[..., None]] = {
    "create": serve.token_create,
    "list": serve.token_list,
    "revoke": serve.token_revoke,
}
for name, command in token_commands.items():
    token_app.command(name)(command)
app.add_typer(token_app, name="token")

audit_log_app = typer.Typer(no_args_is_help=True, help="The scoring API's audit log (`riskloop serve --audit-log`).")
audit_log_app.command("verify")(serve.audit_log_verify)
app.add_typer(audit_log_app, name="audit-log")

__all__ = ["app"]
