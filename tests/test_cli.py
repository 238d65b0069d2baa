"""The riskloop command line end to end on a tiny world."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from riskloop.artifacts.scores import read_scores
from riskloop.cli import app
from riskloop.jobs.learn import shadow_scores
from tests.conftest import hand_tables, write_tables

runner = CliRunner()
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "world"
    result = runner.invoke(app, ["generate", "--out", str(out), "--people", "4000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    # everyone ever present: the 4,000 at the start, and the babies and newcomers since
    assert 4_000 < int(re.search(r"people ([\d,]+)", result.output).group(1).replace(",", "")) < 5_000
    return out


def test_help_lists_every_job():
    result = runner.invoke(app, ["--help"])
    for job in ("generate", "validate", "features", "splits", "train", "promote", "explain", "audit", "score", "demo"):
        assert job in result.output


def test_validate_exit_codes(tiny_world, tmp_path):
    assert runner.invoke(app, ["validate", str(tiny_world)]).exit_code == 0
    broken = tmp_path / "broken"
    shutil.copytree(tiny_world, broken, ignore=shutil.ignore_patterns("truth"))
    incidents = pd.read_parquet(broken / "incidents.parquet")
    incidents.loc[0, "harm"] = -1.0
    incidents.to_parquet(broken / "incidents.parquet")
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 0 and "1 rows quarantined" in result.output.replace("\n", " ")
    assert pd.read_csv(broken / "_quarantine" / "incidents.csv")["reason"].iloc[0] == "harm: -1.0 is below 0"
    assert runner.invoke(app, ["validate", str(broken), "--strict"]).exit_code == 1
    (broken / "areas.parquet").unlink()
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 2 and "missing table 'areas'" in result.output and result.output.count("\n") == 1


def test_features_and_splits(tiny_world, tmp_path):
    out = tmp_path / "snap.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "--data",
            str(tiny_world),
            "--as-of",
            "2023-01-01",
            "--as-of",
            "2025-06-01",
            "--out",
            str(out),
            "--catalogue",
            str(tmp_path / "catalogue.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert set(frame["as_of"].dt.date.astype(str)) == {"2023-01-01", "2025-06-01"}
    assert frame.loc[frame["as_of"] == "2025-06-01", "label"].isna().all()
    assert len(pd.read_csv(tmp_path / "catalogue.csv")) == 186
    result = runner.invoke(app, ["splits", "--config", str(REPO / "experiments" / "escalation.yaml")])
    assert result.exit_code == 0 and "test-2024-07-01" in result.output
    bad = runner.invoke(
        app, ["features", "--data", str(tmp_path / "nowhere"), "--as-of", "2023-01-01", "--out", str(out)]
    )
    assert bad.exit_code == 2 and "not found" in bad.output


@pytest.mark.parametrize(
    "uri, message",
    [
        ("models:/riskloop-nothing@champion", "no registered model 'riskloop-nothing' (registered: none)"),
        ("riskloop-nothing@champion", "'riskloop-nothing@champion': No such artifact"),
        ("runs:/0123456789abcdef/model", "'runs:/0123456789abcdef/model': Run with id=0123456789abcdef not found"),
    ],
)
def test_every_command_taking_a_model_names_a_missing_one_in_one_line(tmp_path, monkeypatch, uri, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()  # the store exists: no set-up lines
    data = write_tables(tmp_path / "d", hand_tables())
    common = ["--model", uri, "--data", str(data), "--as-of", "2023-05-01", "--out", str(tmp_path / "out")]
    for command in ("explain", "audit", "score"):
        result = runner.invoke(app, [command, *common])
        assert result.exit_code == 2 and message in result.output, (command, result.output)
        assert result.output.count("\n") == 1, (command, result.output)
    if uri.startswith("models:/"):
        result = runner.invoke(app, ["promote", "--model", "riskloop-nothing"])
        assert result.exit_code == 2 and result.output.count("\n") == 1
        assert "no registered model 'riskloop-nothing' (registered: none)" in result.output


def test_explain_help_says_a_person_page_stays_local():
    text = " ".join(runner.invoke(app, ["explain", "--help"], env={"COLUMNS": "300"}).output.split())
    assert "models:/riskloop-escalation@champion" in text
    assert "local, not logged to MLflow" in text and "--log-person-page" in text


def _header_only_people(folder: Path) -> None:
    pd.DataFrame(columns=hand_tables()["people"].columns).to_csv(folder / "people.csv", index=False)


def _incidents_twice(folder: Path) -> None:
    hand_tables()["incidents"].to_parquet(folder / "incidents.parquet")


@pytest.mark.parametrize(
    "break_data, args, message",
    [
        (None, ["--horizon-days", "0"], "horizon_days must be at least 1 (got 0)"),
        (None, ["--horizon-days", "-7"], "horizon_days must be at least 1 (got -7)"),
        (None, ["--as-of", "2024-01-01"], "as-of 2024-01-01 is after the data's end (2023-07-01)"),
        (None, ["--as-of", "2019-01-01"], "as-of 2019-01-01 is not after the data's first incident (2023-02-01)"),
        (_header_only_people, [], "no valid rows in people (0 read, 0 quarantined)"),
        (_incidents_twice, [], "both incidents.parquet and incidents.csv are present"),
    ],
)
def test_features_refuses_in_one_line(tmp_path, break_data, args, message):
    folder = write_tables(tmp_path / "d", hand_tables())
    if break_data:
        break_data(folder)
    out = tmp_path / "snap.parquet"
    result = runner.invoke(app, ["features", "--data", str(folder), "--as-of", "2023-05-01", *args, "--out", str(out)])
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output
    assert not out.exists()


def test_features_accepts_as_of_on_the_data_end(tmp_path):
    out = tmp_path / "snap.parquet"
    folder = write_tables(tmp_path / "d", hand_tables())
    result = runner.invoke(app, ["features", "--data", str(folder), "--as-of", "2023-07-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out)["person_id"].tolist() == ["p1", "p2"]


def test_features_reports_a_date_nobody_is_in_as_a_zero_row_and_a_warning(tmp_path):
    """A date with an empty cohort had no row in the summary and no warning: it looked as if it was not built."""
    from riskloop.jobs.data import Snapshots, every_date

    built = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2023-05-01"]).astype("datetime64[s]"),
            "cohort": [2],
            "labelled": [2],
            "positive_rate": [0.5],
        }
    )
    per_date = every_date(built, [date(2023, 6, 1), date(2023, 5, 1)])
    assert per_date[["cohort", "labelled"]].to_numpy().tolist() == [[2, 2], [0, 0]]
    assert Snapshots(tmp_path, per_date, (), ()).empty_dates == [date(2023, 6, 1)]


def test_validate_header_only_areas_quarantines_everyone(tmp_path):
    folder = write_tables(tmp_path / "d", hand_tables())
    pd.DataFrame(columns=hand_tables()["areas"].columns).to_csv(folder / "areas.csv", index=False)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0 and "8 rows quarantined" in result.output.replace("\n", " "), result.output
    for table, rows in (("people", 3), ("incidents", 4), ("interventions", 1)):
        assert len(pd.read_csv(folder / "_quarantine" / f"{table}.csv")) == rows
    _incidents_twice(folder)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and "both incidents.parquet and incidents.csv" in result.output
    assert result.output.count("\n") == 1


@pytest.mark.slow
def test_train_explain_audit_promote(tiny_world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        (REPO / "experiments" / "escalation.yaml")
        .read_text()
        .replace("name: escalation", "name: tiny")
        .replace("num_leaves: [15, 31]", "num_leaves: [7]")
        .replace("n_estimators: [600]", "n_estimators: [150]")
    )
    result = runner.invoke(
        app, ["train", "--config", str(config), "--data", str(tiny_world), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    # off a terminal the summary is not cut to 80 columns: whole model group names
    assert "lightgbm_learning_rate=0.05_min_child_samples=50_n_estimators=150_num_leaves=7 *" in result.output
    assert "challenger alias moved" not in result.output  # there was none before
    for name in ("model_card.html", "fairness_report.html", "metrics.json", "feature_catalogue.csv", "contract.json"):
        assert (tmp_path / "out" / name).exists()
    auc = json.loads((tmp_path / "out" / "metrics.json").read_text())["test_roc_auc"]
    assert f'<td class="num">{auc:.3f}</td>' in (tmp_path / "out" / "model_card.html").read_text()
    model = "models:/riskloop-tiny@challenger"
    result = runner.invoke(
        app,
        [
            "explain",
            "--model",
            model,
            "--data",
            str(tiny_world),
            "--as-of",
            "2024-07-01",
            "--out",
            str(tmp_path / "explain"),
            "--sample",
            "500",
        ],
    )
    assert result.exit_code == 0, result.output
    explained = (tmp_path / "explain" / "explainability.html").read_text()
    assert "with every risk band equally represented" in explained and explained.count("data:image/png") >= 5
    client = MlflowClient()

    def explain_runs() -> int:
        return len(
            client.search_runs(
                [client.get_experiment_by_name("tiny").experiment_id], "tags.`riskloop.kind` = 'explain'"
            )
        )

    incidents = pd.read_parquet(tiny_world / "incidents.parquet")
    person = incidents.loc[incidents["date"] < date(2024, 7, 1), "person_id"].iloc[-1]  # in the cohort at 2024-07-01
    person_args = [
        "explain",
        "--model",
        model,
        "--data",
        str(tiny_world),
        "--as-of",
        "2024-07-01",
        "--sample",
        "500",
        "--person",
        person,
        "--out",
        str(tmp_path / "person"),
    ]
    result = runner.invoke(app, person_args)
    assert result.exit_code == 0 and "local only: not logged to MLflow" in result.output, result.output
    assert f"Person {person}" in (tmp_path / "person" / "explainability.html").read_text() and explain_runs() == 1
    result = runner.invoke(app, [*person_args, "--log-person-page"])
    assert result.exit_code == 0 and "also logged to MLflow" in result.output and explain_runs() == 2
    for command in ("explain", "audit"):
        missing = runner.invoke(
            app,
            [
                command,
                "--model",
                "models:/riskloop-tiny@champion",
                "--data",
                str(tiny_world),
                "--as-of",
                "2024-07-01",
                "--out",
                str(tmp_path / "missing"),
            ],
        )
        assert missing.exit_code == 2 and missing.output.count("\n") == 1, missing.output
        assert (
            "'models:/riskloop-tiny@champion': no such alias or version; riskloop-tiny has aliases @challenger (v1)"
            in missing.output
        )
    result = runner.invoke(
        app,
        [
            "audit",
            "--model",
            model,
            "--data",
            str(tiny_world),
            "--as-of",
            "2024-07-01",
            "--out",
            str(tmp_path / "audit"),
        ],
    )
    assert result.exit_code == 0, result.output
    audited = (tmp_path / "audit" / "fairness_audit.html").read_text()
    assert "Against the synthetic world's truth" in audited  # the check ran (not the 'cannot be checked' text)
    assert "<td>ethnicity</td><td>Black</td>" in audited.replace("\n", "")
    assert "&lt;" not in audited and "<code>mean_true</code>" not in audited  # no markup shown as text
    assert "not out of time" not in result.output
    early = runner.invoke(
        app,
        [
            "audit",
            "--model",
            model,
            "--data",
            str(tiny_world),
            "--as-of",
            "2023-01-01",
            "--out",
            str(tmp_path / "audit-early"),
        ],
    )
    assert early.exit_code == 0 and "is not out of time" in " ".join(early.output.split())
    sizes = pd.read_csv(tmp_path / "audit" / "fairness_disparities.csv", dtype=str)["n"]
    assert "*" in set(sizes) and not [n for n in sizes if n != "*" and int(n) <= 7]  # small groups suppressed
    late = runner.invoke(
        app,
        [
            "audit",
            "--model",
            model,
            "--data",
            str(tiny_world),
            "--as-of",
            "2025-06-01",
            "--out",
            str(tmp_path / "audit"),
        ],
    )
    assert late.exit_code == 2 and "no labels" in late.output
    result = runner.invoke(app, ["promote", "--model", "riskloop-tiny", "--force"])
    assert result.exit_code == 2 and "--reason" in result.output
    missing = runner.invoke(
        app,
        [
            "score",
            "--model",
            "models:/riskloop-tiny@champion",
            "--data",
            str(tiny_world),
            "--as-of",
            "2025-07-01",
            "--out",
            str(tmp_path / "scores"),
        ],
    )
    assert (
        missing.exit_code == 2 and "has aliases @challenger (v1)" in missing.output and missing.output.count("\n") <= 2
    )
    result = runner.invoke(app, ["promote", "--model", "riskloop-tiny", "--force", "--reason", "pilot"])
    assert result.exit_code == 0 and "is now champion" in result.output
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            "models:/riskloop-tiny@champion",
            "--data",
            str(tiny_world),
            "--as-of",
            "2025-07-01",
            "--out",
            str(tmp_path / "scores"),
            "--capacity",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "scores" / "manifest.json").read_text())
    assert manifest["counts"]["reconciles"] and manifest["model"]["version"] == "1"
    assert all(u["listed"] == min(3, u["cohort"]) for u in manifest["counts"]["units"].values())
    assert "counts reconcile: yes" in " ".join(result.output.split())
    # a challenger in shadow: scored beside the champion, never listed (here the same version, so the same ranks)
    score = ["score", "--model", "models:/riskloop-tiny@champion", "--data", str(tiny_world), "--as-of", "2025-07-01"]
    shadowed = runner.invoke(
        app, [*score, "--out", str(tmp_path / "shadowed"), "--capacity", "3", "--shadow", "models:/riskloop-tiny/1"]
    )
    assert shadowed.exit_code == 0 and "shadow: riskloop-tiny v1 scored the same cohort" in " ".join(
        shadowed.output.split()
    )
    scores = read_scores(tmp_path / "shadowed")
    assert scores.manifest.shadow.version == "1" and "shadow.parquet" in {f.path for f in scores.manifest.files}
    both = scores.prioritisation.merge(scores.shadow, on="person_id", suffixes=("", "_shadow"))
    assert len(both) == len(scores.prioritisation) == len(scores.shadow)
    assert (both["rank"] == both["rank_shadow"]).all() and (both["listed"] == both["would_list"]).all()
    beside = shadow_scores(scores)  # what `riskloop learn --scores` judges the shadow model by
    assert beside.model == "riskloop-tiny v1" and len(beside.scores) == len(scores.prioritisation)
    assert (beside.scores["risk"] == beside.scores["shadow_risk"]).all()
    assert shadow_scores(read_scores(tmp_path / "scores")) is None
    lists = sorted(p.name for p in (tmp_path / "shadowed" / "lists").iterdir())
    assert lists == sorted(p.name for p in (tmp_path / "scores" / "lists").iterdir())
    assert read_scores(tmp_path / "scores").shadow is None
    # the folder is replaced whole: one holding anything else (the data set itself, a user's file) is refused
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "important.txt").write_text("precious")
    for taken in (tiny_world, mine):
        before = sorted(p.name for p in taken.iterdir())
        refused = runner.invoke(app, [*score, "--out", str(taken), "--capacity", "3"])
        assert refused.exit_code == 2 and "which riskloop score does not write" in refused.output, refused.output
        assert refused.output.count("\n") == 1 and sorted(p.name for p in taken.iterdir()) == before
    again = runner.invoke(app, [*score, "--out", str(tmp_path / "shadowed"), "--capacity", "3"])  # its own: replaced
    assert again.exit_code == 0 and read_scores(tmp_path / "shadowed").shadow is None
    on_spark = runner.invoke(
        app, [*score, "--out", str(tmp_path / "s"), "--engine", "spark", "--shadow", "models:/riskloop-tiny/1"]
    )
    assert on_spark.exit_code == 2 and "--shadow scores with the local engine only" in on_spark.output


def test_audit_an_existing_tools_scores_from_a_table(tmp_path):
    """tests/data/existing_scores.csv: a tool calibrated for group A that over-states group B by half."""
    table = REPO / "tests" / "data" / "existing_scores.csv"
    result = runner.invoke(
        app,
        [
            "audit",
            "--table",
            str(table),
            "--score-column",
            "risk_score",
            "--label-column",
            "reoffended",
            "--protected",
            "group,sex",
            "--top-share",
            "0.1",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "2 rows without a numeric score and a 0/1 outcome were left out" in said
    assert re.search(
        r"calibration for group=B \(overall\): \d+ observed / [\d.]+ expected = 0\.[5-7]\d", said
    )  # planted 1/1.5
    assert "group=A" not in said and "sex=" not in said
    assert sorted(pd.read_csv(tmp_path / "rejected_rows.csv")["row"]) == [12, 13]
    html = (tmp_path / "fairness_audit.html").read_text()
    assert "the top 10% of scores selected" in html and "The fairness gate" in html
    by_threshold = runner.invoke(
        app,
        [
            "audit",
            "--table",
            str(table),
            "--score-column",
            "risk_score",
            "--label-column",
            "reoffended",
            "--protected",
            "group",
            "--threshold",
            "0.3",
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert (
        by_threshold.exit_code == 0
        and "a score of at least 0.3 selected" in (tmp_path / "t" / "fairness_audit.html").read_text()
    )
    both = runner.invoke(
        app,
        [
            "audit",
            "--table",
            str(table),
            "--score-column",
            "risk_score",
            "--label-column",
            "reoffended",
            "--protected",
            "group",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert both.exit_code == 2 and "exactly one decision rule" in both.output
    wrong = runner.invoke(
        app,
        [
            "audit",
            "--table",
            str(table),
            "--score-column",
            "score",
            "--label-column",
            "reoffended",
            "--protected",
            "group",
            "--top-share",
            "0.1",
            "--out",
            str(tmp_path / "y"),
        ],
    )
    assert wrong.exit_code == 2 and "column 'score' not found" in wrong.output


def test_validate_refuses_a_duplicated_column_in_one_line(tmp_path):
    folder = write_tables(tmp_path / "d", hand_tables())
    (folder / "incidents.csv").write_text("incident_id,person_id,date,type,role,harm,harm\n")
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "incidents.csv: duplicated column 'harm' (keep one)" in result.output


@pytest.mark.parametrize(
    "break_folder, message",
    [
        (lambda f: (f / "incidents.csv").open("a").write("i9,p1,2023-02-01,asb,victim,1,extra,cells\n"), "saw 8"),
        (lambda f: (f / "dataset.json").mkdir(), "dataset.json: cannot be read (Is a directory)"),
        (lambda f: (f / "dataset.json").write_bytes(b'{"end": "2023-12-31", "kind": "caf\xe9"}'), "not UTF-8 text"),
        (lambda f: (f / "dataset.json").write_text("[1, 2, 3]"), "expected a JSON object, got list"),
        (
            lambda f: (f / "dataset.json").write_text('{"start": "2024-01-01", "end": "2023-12-31"}'),
            "its start 2024-01-01 is after its end 2023-12-31",
        ),
    ],
)
def test_validate_refuses_an_unreadable_file_in_one_line_naming_it(tmp_path, break_folder, message):
    """A CSV parser's message held a line break; a folder or non-UTF-8 bytes as dataset.json gave a traceback."""
    folder = write_tables(tmp_path / "d", hand_tables())
    break_folder(folder)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert message in result.output


def test_progress_outside_a_terminal_is_one_line_per_step_with_the_elapsed_time(capsys):
    from riskloop.cli._console import progress

    with progress("learning cycle") as report:
        for step in ("outcomes", "outcomes", "what worked", "retraining", "retraining"):
            report(step, 1, 2)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "learning cycle: outcomes",
        "learning cycle: what worked",
        "learning cycle: retraining",
    ]
    assert all(re.fullmatch(r"\[\d+:\d\d:\d\d\] .*", line) for line in lines)
