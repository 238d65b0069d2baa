"""The synthetic world: determinism, calibration to published figures, planted structure."""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskloop.artifacts.dataset import read_dataset
from riskloop.simulation import truth
from riskloop.simulation.parameters import RECORDING_BASE, Dynamics, WorldConfig
from riskloop.simulation.world import simulate, write_world
from tests.conftest import TODAY


def digest(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def test_same_seed_gives_byte_identical_tables(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder, seed in ((a, 5), (b, 5), (c, 6)):
        write_world(simulate(WorldConfig(people=3_000, seed=seed)), folder)
    assert digest(a) == digest(b)
    assert digest(a)["incidents.parquet"] != digest(c)["incidents.parquet"]


def test_generated_world_satisfies_the_contract(world_20k):
    dataset = read_dataset(world_20k, today=TODAY)
    assert dataset.report.quarantined == 0
    assert dataset.end == date(2025, 12, 31)
    assert set(dataset.incidents["type"]) == set(
        __import__("riskloop.features.vocabulary", fromlist=["INCIDENT_TYPES"]).INCIDENT_TYPES
    )
    assert set(dataset.interventions["programme"]) == {"iris", "drive", "youth_early_action", "diversion"}


def test_ace_prevalence_matches_welsh_ace_study(world_20k):
    ace = pd.read_parquet(world_20k / "truth" / "people.parquet")["ace_count"]
    assert abs((ace >= 1).mean() - 0.47) <= 0.03
    assert abs((ace >= 4).mean() - 0.14) <= 0.03


def test_domestic_abuse_victims_about_five_percent_of_adults_a_year(world_20k):
    people = pd.read_parquet(world_20k / "people.parquet")
    true_incidents = pd.read_parquet(world_20k / "truth" / "incidents.parquet")
    da = true_incidents[(true_incidents["type"] == "domestic_abuse") & (true_incidents["role"] == "victim")]
    rates = []
    for year in range(2019, 2026):
        adult = (pd.Timestamp(f"{year}-07-01") - pd.to_datetime(people["birth_date"])).dt.days >= 18 * 365.25
        victims = set(da.loc[pd.to_datetime(da["date"]).dt.year == year, "person_id"])
        rates.append(people.loc[adult, "person_id"].isin(victims).mean())
    assert abs(np.mean(rates) - 0.05) <= 0.015, rates


def test_small_areas_hold_about_1600_people(world_20k):
    """Areas count the residents present at the world's end, which births and arrivals keep near 20,000."""
    areas = pd.read_parquet(world_20k / "areas.parquet")
    assert abs(areas["population"].mean() - 1600) < 100
    assert abs(areas["population"].sum() - 20_000) <= 50


def test_full_wales_scale_has_22_local_authorities_and_1900_areas():
    config = WorldConfig(people=3_100_000)
    assert config.local_authorities == 22
    assert 1_850 <= config.areas <= 1_990


def test_deprivation_gradient_in_recorded_offending(world_20k):
    people = pd.read_parquet(world_20k / "people.parquet")
    areas = pd.read_parquet(world_20k / "areas.parquet")
    incidents = pd.read_parquet(world_20k / "incidents.parquet")
    offenders = incidents[incidents["role"].isin(["perpetrator", "suspect"])]
    per_area = offenders.merge(people, on="person_id").groupby("area_id").size()
    rate = (per_area / areas.set_index("area_id")["population"]).fillna(0)
    rank = areas.set_index("area_id")["deprivation_rank"]
    assert np.corrcoef(rate[rank.index], -rank)[0, 1] > 0.4


def test_recording_bias_is_planted_and_known(world_20k):
    """Recorded offending over-states the true rate for over-policed groups by the known factor."""
    true_incidents = pd.read_parquet(world_20k / "truth" / "incidents.parquet")
    factor = pd.read_parquet(world_20k / "truth" / "people.parquet").set_index("person_id")["recording_factor"]
    offending = true_incidents[true_incidents["role"].isin(["perpetrator", "suspect"])]
    base = offending["type"].map(RECORDING_BASE)
    expected = np.minimum(1.0, base * offending["person_id"].map(factor).to_numpy())
    over_policed = offending["person_id"].map(factor) > 1.2
    observed = offending.groupby(over_policed)["recorded"].mean()
    planted = expected.groupby(over_policed).mean() / base.groupby(over_policed).mean()
    assert planted[True] / planted[False] > 1.3
    assert observed[True] / observed[False] == pytest.approx(
        expected.groupby(over_policed).mean()[True] / expected.groupby(over_policed).mean()[False], rel=0.05
    )


def test_referrals_are_confounded_by_recent_harm(world_20k):
    """People referred to a programme had far more recorded harm before it than the population."""
    incidents = pd.read_parquet(world_20k / "incidents.parquet")
    interventions = pd.read_parquet(world_20k / "interventions.parquet")
    drive = interventions[interventions["programme"] == "drive"]
    harm = incidents[incidents["role"].isin(["perpetrator", "suspect"])].groupby("person_id")["harm"].sum()
    people = pd.read_parquet(world_20k / "people.parquet")["person_id"]
    all_harm = harm.reindex(people, fill_value=0)
    assert harm.reindex(drive["person_id"], fill_value=0).mean() > 10 * all_harm.mean()


def test_true_effects_are_heterogeneous(world_20k):
    effects = truth.programme_effects(world_20k)
    drive = effects[effects["programme"] == "drive"].merge(
        pd.read_parquet(world_20k / "truth" / "people.parquet"), on="person_id"
    )
    assert drive["effect"].std() > 0.08
    assert drive.groupby(drive["ace_count"] >= 4)["effect"].mean().diff().iloc[-1] < -0.1
    diversion = effects[effects["programme"] == "diversion"]["effect"]
    assert 0.1 < (diversion == 0).mean() < 0.5


def test_true_escalation_probability_ranks_real_outcomes(world_20k):
    """The truth's probabilities predict the recorded labels far better than chance."""
    from sklearn.metrics import roc_auc_score

    probability = truth.escalation_probability(world_20k, date(2023, 1, 1), replicates=8)
    incidents = pd.read_parquet(world_20k / "incidents.parquet")
    window = incidents[
        (pd.to_datetime(incidents["date"]) > "2023-01-01")
        & (pd.to_datetime(incidents["date"]) <= "2024-01-01")
        & incidents["role"].isin(["perpetrator", "suspect"])
        & ((incidents["harm"] > 6) | incidents["type"].isin(["violence_with_injury", "sexual_offence"]))
    ]
    y = probability["person_id"].isin(window["person_id"])
    assert roc_auc_score(y, probability["probability"]) > 0.85
    # calibrated in the large: expected and observed counts agree within 15%
    assert abs(probability["probability"].sum() / y.sum() - 1) < 0.15


def test_a_world_whose_programme_effects_follow_recorded_deprivation():
    """Dynamics(effect_modifier="deprivation"): the same people and risks, the programmes' effects moved from
    the unrecorded ACEs to the area's deprivation; the default world keeps its ACE-driven effects."""
    short = dict(people=2_000, seed=3, end=date(2017, 2, 28))
    default = simulate(WorldConfig(**short)).people
    config = WorldConfig(**short, dynamics=Dynamics(effect_modifier="deprivation"))
    variant = simulate(config).people
    assert WorldConfig.from_json(config.to_json()) == config
    np.testing.assert_array_equal(default.offending_trait, variant.offending_trait)
    np.testing.assert_array_equal(default.ace, variant.ace)
    corr = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
    assert corr(default.effect["drive"], default.ace) < -0.6 < corr(default.effect["drive"], default.deprivation)
    assert corr(variant.effect["drive"], variant.deprivation) < -0.6 < corr(variant.effect["drive"], variant.ace)
    assert abs(variant.effect["drive"].std() - default.effect["drive"].std()) < 0.03  # about the same spread
    with pytest.raises(ValueError, match="effect_modifier"):
        Dynamics(effect_modifier="income")  # type: ignore[arg-type]
