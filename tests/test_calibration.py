"""The synthetic world against the published figures it is calibrated to (simulation.calibration), on a
small and a large world, and the bound on recorded histories."""

from __future__ import annotations

import pytest

from riskloop.simulation.calibration import MAX_RECORDED_OFFENDING_A_YEAR, TARGETS, measure
from tests.conftest import make_world


@pytest.fixture(scope="module")
def figures(world_20k, tmp_path_factory) -> dict[str, dict[str, float]]:
    large = make_world(tmp_path_factory.mktemp("world200k"), 200_000, seed=23)
    return {"20k": measure(world_20k), "200k": measure(large)}


@pytest.mark.parametrize("size", ["20k", "200k"])
@pytest.mark.parametrize("target", TARGETS, ids=[t.key for t in TARGETS])
def test_world_matches_the_published_figure(figures, size, target):
    value = figures[size][target.key]
    assert target.low <= value <= target.high, f"{target.what}: {value:.4g} outside {target.low}-{target.high}"


@pytest.mark.parametrize("size", ["20k", "200k"])
def test_no_one_has_an_implausible_recorded_history(figures, size):
    assert figures[size]["max_offending_per_year"] <= MAX_RECORDED_OFFENDING_A_YEAR
    assert figures[size]["max_involvements_per_year"] <= 1.5 * MAX_RECORDED_OFFENDING_A_YEAR


def test_every_target_cites_a_source_and_has_a_band_around_its_published_value():
    assert len({t.key for t in TARGETS}) == len(TARGETS)
    for target in TARGETS:
        assert target.source and target.low < target.high, target
