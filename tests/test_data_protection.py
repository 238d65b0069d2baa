"""What leaves the team: no person's row in MLflow, rejected rows kept local, group sizes under the
disclosure rule, no data folder path in the model card."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from riskloop.experiments.config import load_config
from riskloop.experiments.tracking import log_training
from riskloop.jobs.model import model_data
from riskloop.models.fairness import CELLS, DISPARITY_COUNTS
from riskloop.pipelines.train import train
from riskloop.reports.disclosure import disclose, protect
from tests.test_experiments import DATA

THRESHOLD = 10  # a partnership's own threshold, above the default 7


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """The screening table trained and logged with disclosure threshold 10; (data, result, output
    folder, the run's logged artifacts, the registered model's files)."""
    store = tmp_path_factory.mktemp("protection")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(store)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
        config = load_config(DATA / "screening.yaml")
        config = dataclasses.replace(
            config, name="protected", fairness=dataclasses.replace(config.fairness, disclosure_threshold=THRESHOLD)
        )
        data = model_data(config)
        result = train(data, config)
        outcome = log_training(config, data, result, store / "out")
        run = Path(mlflow.artifacts.download_artifacts(run_id=outcome.run_id, dst_path=str(store / "run")))
        model = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{config.registered_model}/{outcome.model_version}", dst_path=str(store / "model")
            )
        )
    return data, result, store / "out", run, model


def test_no_row_of_real_data_is_logged_with_the_model(logged):
    data, _, _, run, model = logged
    assert not {"input_example.json", "serving_input_example.json"} & {p.name for p in model.rglob("*")}
    signature = yaml.safe_load((model / "MLmodel").read_text())["signature"]
    assert [c["name"] for c in yaml.safe_load(signature["inputs"])] == data.features  # the schema is kept
    ids = set(pd.read_csv(DATA / "screening.csv", dtype=str)["id"].dropna())
    for path in [*run.rglob("*"), *model.rglob("*")]:
        if path.is_file() and path.suffix in (".json", ".csv", ".html", ".yaml", ""):
            text = re.sub(r"data:image/png;base64,[\w+/=]+", "", path.read_text(errors="ignore"))
            assert not ids & set(re.findall(r"\bc\d{4}\b", text)), path.name


def test_rejected_rows_stay_local_and_only_their_reasons_are_logged(logged):
    _, _, out, run, _ = logged
    assert not (run / "rejected_rows.csv").exists()
    assert len(pd.read_csv(out / "rejected_rows.csv")) == 3  # kept in the local output folder
    reasons = pd.read_csv(run / "rejected_reasons.csv").set_index("reason")["rows"].to_dict()
    assert reasons == {"screening_date: not a valid date": 1, "outcome: not 0 or 1": 1, "id: missing": 1}


class _Tables(HTMLParser):
    """Every <table> of a page as (headings, rows of cell texts)."""

    def __init__(self, html: str):
        super().__init__()
        self.tables, self._cell = [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            headings, rows = self.tables[-1]
            (headings if tag == "th" else rows[-1]).append(self._cell.strip())
            self._cell = None


def _shown_sizes(html: str) -> list[str]:
    """The cells of every 'people' column (group sizes) in a page's tables."""
    cells = []
    for headings, rows in _Tables(html).tables:
        if "people" in headings:
            cells += [row[headings.index("people")] for row in rows if row]
    return cells


def test_group_sizes_up_to_the_threshold_never_leave_the_team(logged):
    _, result, out, run, _ = logged
    audit = {"fairness_by_group.csv": result.fairness.by_group, "fairness_disparities.csv": result.fairness.disparities}
    for name, exact in audit.items():
        assert exact["n"].between(1, THRESHOLD).any()  # the audit has small groups to hide
        logged_table = pd.read_csv(run / name, dtype=str)
        assert (out / name).read_text() == (run / name).read_text()
        hidden = logged_table["n"] == "*"
        assert (hidden == exact["n"].between(1, THRESHOLD)).all()
        shown = pd.to_numeric(logged_table.loc[~hidden, "n"])
        assert (shown % 5 == 0).all() and (shown > 7).all()  # rounded to 5s: 11 and 12 show as 10
        rates = [c for c in ("observed", "selection_rate", "ratio", "ci_low", "value") if c in logged_table]
        assert (logged_table.loc[hidden, rates] == "*").all().all()  # rates of hidden groups are hidden too
        for column in [c for c in (*CELLS, *DISPARITY_COUNTS) if c in logged_table]:  # counts within groups too
            counts = logged_table[column]
            assert counts.map(lambda v: v == "*" or (int(v) % 5 == 0 and int(v) not in range(1, 8))).all(), column
    for page in ("model_card.html", "fairness_report.html"):
        shown = _shown_sizes((run / page).read_text())
        assert shown and "*" in shown, page
        assert not [s for s in shown if s != "*" and (int(s.replace(",", "")) <= 7 or int(s.replace(",", "")) % 5)], (
            page
        )


def test_the_model_card_does_not_print_the_data_folder(logged):
    _, _, _, run, _ = logged
    for page in ("model_card.html", "fairness_report.html"):
        text = (run / page).read_text()
        assert str(DATA.resolve()) not in text and str(DATA) not in text, page
    assert "screening.csv" in (run / "model_card.html").read_text()


def test_disclosure_rule():
    assert [disclose(n, 7) for n in (0, 1, 7, 8, 12, 13, 1232, 1233)] == [0, "*", "*", 10, 10, 15, 1230, 1235]
    assert disclose(9, 10) == "*" and disclose(3, 0) == 5
    frame = pd.DataFrame({"group": ["a", "b"], "n": [3, 120], "rate": [1 / 3, 0.25], "small": [True, False]})
    shown = protect(frame, 7)
    assert shown.to_dict("list") == {"group": ["a", "b"], "n": ["*", 120], "rate": ["*", 0.25], "small": [True, False]}
