"""`riskloop audit --table` on scores that are not probabilities: an assessment tool's 1-10 deciles are
audited on ranks and error rates only, and with `--calibrate-before` calibrated on earlier rows and
judged out of time on later ones."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskloop.cli import app
from riskloop.models.fairness import AuditConfig
from riskloop.pipelines.audit import ExistingScores, audit_scores, is_probability

runner = CliRunner()


def decile_table(n: int = 6_000, seed: int = 3) -> pd.DataFrame:
    """A tool's 1-10 decile score of a logistic truth, outcomes drawn from the truth, a protected column
    whose group B has a higher base rate, and the date each row was assessed (2023 and 2024)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], n, p=[0.7, 0.3])
    x = rng.normal(size=n) + 0.5 * (group == "B")
    truth = 1 / (1 + np.exp(-(-2.5 + 1.2 * x)))
    decile = pd.qcut(x, 10, labels=False) + 1
    dates = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 730, n), unit="D")
    return pd.DataFrame(
        {
            "decile": decile,
            "reoffended": (rng.random(n) < truth).astype(int),
            "group": group,
            "assessed": dates.strftime("%Y-%m-%d"),
        }
    )


def audit_cli(table: pd.DataFrame, tmp_path: Path, *extra: str):
    path = tmp_path / "scores.csv"
    table.to_csv(path, index=False)
    args = ["audit", "--table", str(path), "--score-column", "decile", "--label-column", "reoffended"]
    return runner.invoke(app, [*args, "--protected", "group", "--out", str(tmp_path / "out"), *extra])


def test_a_decile_score_gets_no_calibration_verdict_but_keeps_its_error_rates(tmp_path):
    result = audit_cli(decile_table(), tmp_path, "--threshold", "5")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "calibration is not assessed because the score is not a probability (values from 1 to 10)" in said
    assert "calibration for" not in said and "observed/expected" not in said
    html = (tmp_path / "out" / "fairness_audit.html").read_text()
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", html)).split())
    assert "Calibration is not assessed because the score is not a probability" in text
    assert "observed events" not in text and "expected events" not in text  # no calibration table
    assert "net of base rates" not in text and "excess over the reference" not in text
    assert "mean predicted risk" not in text and "passes the fairness gate" not in text
    assert "not assessed" in text  # each harmful-error row: rate shown, no verdict
    # the descriptive disparities and the per-group AUC remain
    assert "Disparities in the primary metrics" in text and "false negative rate" in text
    assert re.search(r"<td>group</td><td>B</td><td>false negative rate</td>", html)
    assert re.search(
        r"<td>group</td><td>A</td><td class=\"num\">[\d,]+</td><td class=\"num\">[\d,]+</td>"
        r"<td class=\"num\">0\.\d{3}</td><td class=\"num\">0\.\d{2}-0\.\d{2}</td></tr>",
        html,
    )


def test_the_deciles_audited_in_the_pipeline_rank_and_select_as_the_tool_does():
    table = decile_table()
    audited = audit_scores(table, ExistingScores("decile", "reoffended", ("group",), threshold=5), AuditConfig())
    result = audited.result.audit
    assert not result.probability and result.calibration.empty and result.gate_reasons() == []
    assert result.operating_point["k"] == (table["decile"] >= 5).sum()
    assert set(result.errors["status"]) == {"not assessed"} and result.errors["implied_rate"].isna().all()
    assert result.errors["rate"].between(0, 1).all()
    assert result.ranking["auc"].between(0.6, 0.9).all()  # deciles of the truth's index rank well
    assert "mean_predicted" not in result.by_group


def test_calibrate_before_judges_calibration_out_of_time_on_the_later_rows_only(tmp_path):
    table = decile_table()
    later = int((pd.to_datetime(table["assessed"]) >= "2024-01-01").sum())
    spec = ExistingScores(
        "decile",
        "reoffended",
        ("group",),
        threshold=5,
        calibrate_before=pd.Timestamp("2024-01-01").date(),
        date_column="assessed",
    )
    audited = audit_scores(table, spec, AuditConfig())
    result = audited.result.audit
    assert result.probability and result.operating_point["n"] == later
    overall = result.calibration[result.calibration["scope"] == "all"]
    assert overall["n"].sum() == later  # judged on the later rows only
    assert overall["ratio"].between(0.75, 1.3).all()  # the map learned on 2023 holds in 2024
    assert f"the audit covers the {later:,} rows from that date on" in audited.calibration
    # on the later rows, the selection is the tool's own: deciles 5 and above
    assert (
        result.operating_point["k"]
        == (table.loc[pd.to_datetime(table["assessed"]) >= "2024-01-01", "decile"] >= 5).sum()
    )
    cli = audit_cli(
        table, tmp_path, "--threshold", "5", "--calibrate-before", "2024-01-01", "--date-column", "assessed"
    )
    assert cli.exit_code == 0, cli.output
    html = (tmp_path / "out" / "fairness_audit.html").read_text()
    assert "calibration assessed out of time" in html and "observed events" in html


def test_a_probability_keeps_the_calibration_audit():
    table = decile_table().assign(decile=lambda t: t["decile"] / 10)
    assert is_probability(table["decile"].to_numpy())
    audited = audit_scores(table, ExistingScores("decile", "reoffended", ("group",), top_share=0.3), AuditConfig())
    assert audited.result.audit.probability and not audited.result.audit.calibration.empty
    assert "every score is in [0, 1]" in audited.calibration


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--calibrate-before", "2024-01-01"], "--calibrate-before needs --date-column"),
        (["--date-column", "assessed"], "--date-column is only read with --calibrate-before"),
        (["--calibrate-before", "2020-01-01", "--date-column", "assessed"], "no row is dated before 2020-01-01"),
        (["--calibrate-before", "2030-01-01", "--date-column", "assessed"], "no row is dated on or after 2030-01-01"),
        (
            ["--calibrate-before", "2024-01-01", "--date-column", "group"],
            "--date-column 'group': 6,000 values are not dates",
        ),
        (["--calibrate-before", "2024-01-01", "--date-column", "when"], "column 'when' not found"),
    ],
)
def test_bad_calibration_options_are_refused_in_one_line(tmp_path, extra, said):
    result = audit_cli(decile_table(), tmp_path, "--threshold", "5", *extra)
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split()) and len(result.output.strip().splitlines()) == 1, result.output
