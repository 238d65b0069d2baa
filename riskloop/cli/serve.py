"""`riskloop serve` and `riskloop token ...`: the scoring API and its bearer tokens (logic in serving/)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from riskloop.cli._console import DATE, EXPECTED, console, fatal, out

TokensFile = Annotated[
    Path | None, typer.Option("--tokens", help="tokens file (default: $RISKLOOP_TOKENS, else riskloop-tokens.jsonl)")
]


def _tokens_path(tokens: Path | None) -> Path:
    from riskloop.serving.settings import default_tokens_path

    return tokens or default_tokens_path()


def token_create(
    name: Annotated[str, typer.Option(help="who or what uses the token (unique; shown in the audit log)")],
    scope: Annotated[str, typer.Option(help="local authorities it may read (comma-separated), or 'all'")],
    tokens: TokensFile = None,
) -> None:
    """Create a token and print it once; only its sha256 is stored."""
    from riskloop.serving.tokens import TokenError, create_token, parse_scopes

    path = _tokens_path(tokens)
    try:
        token = create_token(path, name, parse_scopes(scope))
    except TokenError as exc:
        fatal(str(exc))
    typer.echo(token)
    console.print(f"token '{name}' added to {path}; copy it now: it cannot be shown again", highlight=False)


def token_list(tokens: TokensFile = None) -> None:
    """The tokens' names, scopes and creation times (never their hashes)."""
    from riskloop.serving.tokens import TokenError, load_tokens

    path = _tokens_path(tokens)
    try:
        records = load_tokens(path)
    except TokenError as exc:
        fatal(str(exc))
    table = Table(title=f"tokens in {path}")
    for col in ("name", "scopes", "created (UTC)"):
        table.add_column(col)
    for t in records:
        table.add_row(t.name, ", ".join(t.scopes), t.created_at)
    out.print(table)


def token_revoke(name: Annotated[str, typer.Option(help="the token to remove")], tokens: TokensFile = None) -> None:
    """Remove a token (running servers refuse it from their next request)."""
    from riskloop.serving.tokens import TokenError, revoke_token

    path = _tokens_path(tokens)
    try:
        revoke_token(path, name)
    except TokenError as exc:
        fatal(str(exc))
    out.print(f"revoked '{name}' in {path}; servers using this file refuse it from their next request")


def serve(
    scores: Annotated[Path | None, typer.Option(help="a `riskloop score` output folder")] = None,
    model: Annotated[str | None, typer.Option(help="model URI for /invocations, e.g. models:/NAME@champion")] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
    tokens: TokensFile = None,
    audit_log: Annotated[
        Path, typer.Option(help="append-only, chained JSON-lines audit log (0600); SIGHUP reopens it")
    ] = Path("riskloop-audit.jsonl"),
    insecure_local: Annotated[bool, typer.Option(help="no tokens: loopback only, for local trials")] = False,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body")] = 1 << 20,
    max_rows: Annotated[int, typer.Option(help="most rows per POST /invocations")] = 1000,
    rate: Annotated[float, typer.Option(help="requests per second per token")] = 20.0,
    burst: Annotated[int, typer.Option(help="burst allowance per token")] = 40,
    trusted_proxy: Annotated[
        str | None, typer.Option(help="address of a reverse proxy whose X-Forwarded-For names the client")
    ] = None,
    export_openapi: Annotated[Path | None, typer.Option(help="write the OpenAPI schema to FILE and exit")] = None,
) -> None:
    """Serve the batch scores and the model over HTTP, behind bearer tokens, with an audit log."""
    from riskloop.serving.server import export_openapi as write_openapi
    from riskloop.serving.server import serve as run_server
    from riskloop.serving.settings import ServeSettings

    if export_openapi is not None:
        write_openapi(export_openapi)
        out.print(f"wrote {export_openapi}")
        return
    if scores is None and model is None:
        fatal("nothing to serve: give --scores, --model or both")
    settings = ServeSettings(
        scores=scores,
        model_uri=model,
        tokens=_tokens_path(tokens),
        audit_log=audit_log,
        insecure_local=insecure_local,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        rate=rate,
        burst=burst,
        trusted_proxy=trusted_proxy,
    )
    if insecure_local:
        console.print(
            "[bold red]WARNING: --insecure-local: NO AUTHENTICATION. Anyone on this machine can read "
            "every score. Loopback only; never with real data.[/]",
            highlight=False,
        )
    try:
        run_server(settings)
    except ValueError as exc:  # ServeError, ScoresError, ModelError, TokenError: one line each
        fatal(str(exc).splitlines()[0])


def example_request(
    as_of: Annotated[datetime, typer.Option("--as-of", formats=DATE, help="the cohort's as-of date")],
    model: Annotated[str, typer.Option(help="model URI")] = "models:/riskloop-escalation@champion",
    data: Annotated[Path, typer.Option(help="riskloop data set folder")] = Path("riskloop-demo/data"),
    rows: Annotated[int, typer.Option(min=1, max=1000, help="people (rows) in the request")] = 2,
) -> None:
    """Print a POST /invocations body for MODEL: the features of the first ROWS people in the cohort at
    the as-of date (the model's input columns, no pseudonyms), for trying the API."""
    from riskloop.jobs.score import invocation_example

    try:
        body = invocation_example(model, data, as_of.date(), rows)
    except EXPECTED as exc:
        fatal(str(exc))
    typer.echo(json.dumps(body))


def audit_log_verify(
    files: Annotated[list[Path], typer.Argument(help="the rotated files oldest first, then the log", exists=True)],
    after: Annotated[
        str | None, typer.Option(help="the head printed when the earlier files (no longer kept) were verified")
    ] = None,
) -> None:
    """Check the audit log's chain from its start (or from --after): every line in sequence and linked to
    the one before; names the first edited, inserted or missing line (exit 1)."""
    from riskloop.serving.audit_log import chain_head, verify

    verdict = verify(files, after=after, head=chain_head(files[-1]))  # the head read first: a live log only grows
    if not verdict.intact:
        fatal(f"audit log broken: {verdict.problem}", code=1)
    start = "" if after is None else f" (after {after[:12]}...)"
    out.print(
        f"audit log intact: {verdict.lines:,} lines, seq {verdict.first_seq}..{verdict.last_seq}{start}; "
        f"head {verdict.head}",
        highlight=False,
    )
