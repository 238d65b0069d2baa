"""The closed loop on a small world: places go where the policy says, their true effect is measured by
re-running the year without them, surveillance inflates what is recorded of the listed only, and a loop
trained on reported incidents only never learns from what attention found."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskloop.cli import app
from riskloop.experiments.config import load_config
from riskloop.pipelines.data import ModelData, SplitMasks
from riskloop.pipelines.train import train
from riskloop.simulation.parameters import WorldConfig
from riskloop.simulation.world import Enrolment, extend, simulate
from riskloop.studies import closed_loop
from riskloop.studies.closed_loop import LoopSettings, _rank_shift, _thinned, run_loop

BASE = load_config(Path(__file__).parent.parent / "experiments" / "escalation.yaml")


@pytest.mark.slow
def test_a_cycle_with_surveillance_records_more_of_the_listed_and_measures_the_places(tmp_path):
    settings = LoopSettings(
        people=6_000,
        seed=3,
        cycles=1,
        capacity=60,
        policy="risk",
        retrain="treatment-aware",
        surveillance_effect=2.0,
        threads=2,
        compare_retraining=True,
        ceiling=True,
    )
    cycle = run_loop(settings, BASE, tmp_path).iloc[0]
    # Cycle 1 scores with the burn-in model, so the other retraining's ranking is the same, person by person;
    # the ceiling's model learned from the world with no programme effect, so its ranking is its own.
    for name in ("model_auc_vs_true_risk", "model_auc_vs_true_risk_unhelped", "helped_rank_shift"):
        assert cycle[f"other_retrain_{name}"] == cycle[name] != cycle[f"ceiling_{name}"]
    assert 0.6 < cycle["ceiling_model_auc_vs_true_risk_unhelped"] <= 1
    assert cycle["thinned_ceiling_model_auc_vs_true_risk_unhelped"] != cycle["ceiling_model_auc_vs_true_risk_unhelped"]
    world, untreated = tmp_path / "world", tmp_path / "untreated-world"
    assert pd.read_parquet(world / "people.parquet")["person_id"].equals(
        pd.read_parquet(untreated / "people.parquet")["person_id"]
    )
    assert (pd.read_parquet(untreated / "truth" / "effects.parquet")["effect"] == 0).all()
    assert (pd.read_parquet(world / "truth" / "effects.parquet")["effect"] > 0).any()
    starts = [
        set(iv.loc[(iv["programme"] == "drive") & (iv["start_date"] > date(2024, 1, 1)), "person_id"])
        for iv in (pd.read_parquet(w / "interventions.parquet") for w in (world, untreated))
    ]
    assert len(starts[0] & starts[1]) >= 60  # the cycle's places, given in both worlds
    assert cycle["places"] == 60  # every place taken up (none offered to people the world would skip)
    assert cycle["recorded_true_offending_ratio_listed"] > 1.3 * cycle["recorded_true_offending_ratio_others"]
    assert cycle["escalations_prevented_by_the_places"] >= 0  # DRIVE only lowers hazards
    assert cycle["harm_prevented_by_the_places"] >= 0 and cycle["true_offending_harm"] > 0
    assert cycle["true_effect_on_the_listed"] <= 0
    assert 0.6 < cycle["model_auc_vs_true_risk"] <= 1 and 0.6 < cycle["model_auc_vs_true_risk_unhelped"] <= 1
    assert -1 < cycle["helped_rank_shift"] < 1  # the world's own referrals leave people in programmes
    assert (tmp_path / "world" / "people.parquet").exists()


@pytest.mark.slow
def test_a_loop_trained_on_reported_incidents_only_never_learns_from_what_attention_found(tmp_path, monkeypatch):
    trained = []

    def spy(data, config):
        trained.append(data)
        return train(data, config)

    monkeypatch.setattr(closed_loop, "train", spy)
    settings = LoopSettings(
        people=2_000, seed=4, cycles=1, capacity=20, retrain="naive", surveillance_effect=3.0, threads=2
    )
    cycle = run_loop(dataclasses.replace(settings, incidents="reported"), BASE, tmp_path).iloc[0]
    assert cycle["places"] > 0 and 0.5 < cycle["model_auc_vs_true_risk"] <= 1
    assert len(trained) == 2  # the burn-in model and the cycle's retrained one
    proactive = [c for c in trained[0].features if "_drugs_" in c or "_public_order_" in c]
    for data in trained:
        assert data.snapshot.incidents == "reported" and (data.frame[proactive] == 0).all().all()
    incidents = pd.read_parquet(tmp_path / "world" / "incidents.parquet")
    assert (incidents["attention"] == "proactive").sum() > 100  # the world recorded them; the models left them out


def test_places_are_offered_only_to_people_who_can_take_them():
    """A year after a start, its effect window is still open: the world would skip a second start, so the
    loop does not offer one; everyone it does offer a place starts."""
    sim = simulate(WorldConfig(people=2_000, seed=5, end=date(2020, 12, 31)))
    can_start = lambda programme: sim.state.can_start(programme, sim.months)  # noqa: E731
    first = np.flatnonzero(can_start("drive") & sim.people.present)[::10]
    month = sim.months
    extend(sim, 12, enrol=lambda s, m: Enrolment(first, "drive") if m == month else None)
    assert not can_start("drive")[first].any() and can_start("iris")[first].any()
    offered = np.flatnonzero(can_start("drive") & sim.people.present)
    rows_before = sum(len(p) for p in sim.interventions.person)
    extend(sim, 1, enrol=lambda s, m: Enrolment(offered, "drive"))
    new = slice(rows_before, None)
    started = np.concatenate(sim.interventions.person)[new][np.concatenate(sim.interventions.programme)[new] == "drive"]
    stayed = offered[sim.people.present[offered]]  # a few leave Wales that month
    assert np.isin(stayed, started).all() and len(stayed) > 1_500 and not np.isin(first, started).any()


def test_a_window_that_ends_this_month_is_open_and_one_that_ends_next_month_is_not():
    sim = simulate(WorldConfig(people=500, seed=1, end=date(2019, 12, 31)))
    sim.state.effect_until["drive"][:3] = sim.months + np.array([-1, 0, 1])
    assert sim.state.can_start("drive", sim.months)[:3].tolist() == [True, True, False]


def test_the_rank_shift_is_how_far_below_their_true_risk_the_model_ranks_the_helped():
    probability = np.array([0.1, 0.2, 0.3, 0.4, np.nan])
    helped = np.array([False, False, True, True, True])
    assert _rank_shift(probability * 2, probability, helped) == 0
    assert _rank_shift(np.array([4, 3, 2, 1, 0]), probability, helped) == pytest.approx(-0.5)
    assert np.isnan(_rank_shift(probability, probability, np.zeros(5, bool)))


@pytest.mark.slow
def test_no_places_change_nothing_the_policy_did_not_touch(tmp_path):
    none = run_loop(
        LoopSettings(people=6_000, seed=3, cycles=1, capacity=60, policy="none", threads=2), BASE, tmp_path / "none"
    ).iloc[0]
    risk = run_loop(
        LoopSettings(people=6_000, seed=3, cycles=1, capacity=60, policy="risk", threads=2), BASE, tmp_path / "risk"
    ).iloc[0]
    assert none["places"] == 0 and np.isnan(none["true_effect_on_the_listed"])
    # Common random numbers: the same world, fewer true escalations only through the places.
    assert none["true_escalations"] - risk["true_escalations"] == pytest.approx(
        risk["escalations_prevented_by_the_places"], abs=3
    )
    assert none["true_offending_harm"] - risk["true_offending_harm"] == pytest.approx(
        risk["harm_prevented_by_the_places"], abs=0.05 * risk["true_offending_harm"] / 60
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy", "best"], "--policy"),
        (["--retrain", "clever"], "--retrain"),
        (["--programme", "boxing"], "--programme"),
        (["--surveillance-effect", "0.5"], "--surveillance-effect"),
        (["--effect-scale", "-1"], "--effect-scale"),
        (["--effect-scale", "inf"], "--effect-scale"),
        (["--effect-modifier", "income"], "--effect-modifier"),
        (["--incidents", "proactive"], "--incidents"),
    ],
)
def test_simulate_refuses_bad_options_in_one_line(tmp_path, args, message):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output


def test_the_loop_runs_the_world_whose_effects_vary_with_what_it_is_told(tmp_path, monkeypatch):
    """`riskloop simulate --effect-modifier deprivation` reaches the world's dynamics (checked at the
    burn-in world, where the loop's world is made)."""
    made: list[WorldConfig] = []

    def burn_in(config: WorldConfig):
        made.append(config)
        raise RuntimeError("stop after the world's settings")

    monkeypatch.setattr(closed_loop, "simulate", burn_in)
    for modifier in ("deprivation", "aces"):
        with pytest.raises(RuntimeError, match="stop after"):
            run_loop(LoopSettings(people=1_000, effect_modifier=modifier), BASE, tmp_path)
    assert [c.dynamics.effect_modifier for c in made] == ["deprivation", "aces"]
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--effect-modifier", "deprivation"])
    assert result.exit_code != 0 and made[-1].dynamics.effect_modifier == "deprivation"


def test_the_thinned_ceiling_keeps_every_negative_row_and_the_recorded_count_of_positives():
    label = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0])
    frame = pd.DataFrame({"person_id": [f"p{i}" for i in range(10)], "label": label})
    split = SplitMasks("final", np.arange(10) < 6, (np.arange(10) >= 6) & (np.arange(10) < 8), np.arange(10) >= 8)
    data = ModelData(frame, [], [], [], None, [split], split, "test", "f", None)
    thinned = _thinned(data, 2, seed=0)
    assert thinned.frame["label"].tolist().count(1) == 2 and thinned.frame["label"].tolist().count(0) == 4
    kept = frame["person_id"].isin(thinned.frame["person_id"]).to_numpy()
    assert thinned.frame["person_id"].tolist() == frame.loc[kept, "person_id"].tolist()
    assert thinned.final is thinned.splits[0] and thinned.final.fit.tolist() == split.fit[kept].tolist()
    assert thinned.final.test.tolist() == split.test[kept].tolist()
    assert _thinned(data, 2, seed=0).frame.equals(thinned.frame)  # the same seed leaves out the same rows
    assert _thinned(data, 9, seed=0).frame.equals(frame)  # never more positives than there are
