"""Linking people across agencies (Splink on DuckDB): the right clusters, stable keys, deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskloop.ingest.linkage import (
    DEFAULT_COMPARISONS,
    ExactComparison,
    LinkageSettings,
    NamesComparison,
    link_people,
    normalise_records,
)

FIRST = ["Rhys", "Megan", "Dylan", "Ffion", "Gareth", "Cerys", "Owen", "Seren", "Tomos", "Elin", "Jack", "Olivia"]
LAST = ["Jones", "Williams", "Davies", "Evans", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan", "Griffiths"]


def people_records(people: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Records of `people` people, each under 1-3 source ids, some with a typo, swapped names or no DOB;
    and each record's true person (names from short lists: a hard case, for the linkage's properties)."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for person in range(people):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        birth = pd.Timestamp("1960-01-01") + pd.Timedelta(days=int(rng.integers(0, 40 * 365)))
        sex, area = rng.choice(["M", "F"]), f"W{rng.integers(0, 40):03d}"
        for copy in range(int(rng.integers(1, 4))):
            f, l_, b = first, last, birth
            fault = rng.random()
            if copy and fault < 0.15:
                at = int(rng.integers(1, len(l_)))
                l_ = l_[:at] + l_[at + 1 :]
            elif copy and fault < 0.25:
                f, l_ = l_, f
            if copy and rng.random() < 0.2:
                b = pd.NaT
            source = ["police", "council", "provider"][copy]
            rows.append((source, f"{source[0].upper()}{person}", f.upper() if copy == 1 else f, l_, b, sex, area))
            truth.append(person)
    columns = ["source", "source_id", "first_name", "last_name", "birth_date", "sex", "area_id"]
    return pd.DataFrame(rows, columns=columns), pd.Series(truth)


@pytest.fixture(scope="module")
def linked():
    records, truth = people_records(600, seed=5)
    return records, truth, link_people(records, LinkageSettings(seed=3))


def test_records_of_one_person_end_in_one_cluster(linked):
    """Exact duplicates across sources (same name, date of birth, sex, area) always link; every record is clustered."""
    records, truth, linkage = linked
    clusters = records.merge(linkage.clusters, on=["source", "source_id"], how="left")["cluster_key"]
    assert clusters.notna().all() and len(linkage.clusters) == len(records)
    exact = records.assign(truth=truth, cluster=clusters).groupby(
        ["truth", "first_name", "last_name", "birth_date"], dropna=True
    )["cluster"]
    assert (exact.nunique() == 1).all()


def test_the_cluster_key_is_the_smallest_record_id_of_the_cluster(linked):
    _, _, linkage = linked
    ids = linkage.clusters["source"] + ":" + linkage.clusters["source_id"]
    assert (ids.groupby(linkage.clusters["cluster_key"]).min() == linkage.clusters["cluster_key"].unique()).all()
    assert int((linkage.cluster_sizes["size"] * linkage.cluster_sizes["clusters"]).sum()) == len(linkage.clusters)


def test_the_diagnostics_describe_the_scored_pairs(linked):
    _, _, linkage = linked
    assert linkage.pairs_scored == int(linkage.match_weights["pairs"].sum()) > 0
    assert len(linkage.near_threshold) == 50
    gaps = (linkage.near_threshold["match_probability"] - linkage.threshold).abs()
    assert gaps.is_monotonic_increasing


def test_linkage_is_deterministic_for_the_same_records_and_seed(linked):
    records, _, linkage = linked
    again = link_people(records.sample(frac=1.0, random_state=1), LinkageSettings(seed=3))
    pd.testing.assert_frame_equal(linkage.clusters, again.clusters)
    pd.testing.assert_frame_equal(linkage.match_weights, again.match_weights)


def test_one_source_id_is_one_record_and_names_are_normalised():
    records = pd.DataFrame(
        {
            "source": ["police", "police"],
            "source_id": ["N1", "N1"],
            "first_name": ["  Siân Mai ", "Sian"],
            "last_name": ["O'Brien-Jones", "OBrienJones"],
            "birth_date": pd.to_datetime(["1990-02-03", None]),
            "sex": ["F", "F"],
            "area_id": ["W01", "W01"],
        }
    )
    frame = normalise_records(records)
    assert frame[["unique_id", "first_name", "last_name", "name_key", "birth_date"]].values.tolist() == [
        ["police:N1", "sian", "obrienjones", "obrienjones sian", "1990-02-03"]
    ]


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="extra"):
        LinkageSettings.model_validate({"threshold": 0.9, "blokcing": []})
    with pytest.raises(ValueError, match="column"):
        LinkageSettings.model_validate({"comparisons": [{"kind": "exact", "column": "postcode"}]})


@pytest.mark.parametrize("count", [0, 1, 2])
def test_too_few_records_are_each_their_own_cluster(count):
    records, _ = people_records(5, seed=1)
    linkage = link_people(records.iloc[:count], LinkageSettings())
    assert (
        linkage.clusters["cluster_key"].tolist()
        == (records["source"] + ":" + records["source_id"]).iloc[:count].tolist()
    )
    assert linkage.pairs_scored == 0 and linkage.match_weights.empty and linkage.near_threshold.empty


def test_a_handful_of_records_still_links():
    records = pd.DataFrame(
        {
            "source": ["police", "council", "provider"],
            "source_id": ["N1", "C1", "P1"],
            "first_name": ["Rhys", "RHYS", "Megan"],
            "last_name": ["Jones", "Jones", "Evans"],
            "birth_date": pd.to_datetime(["1990-01-01", "1990-01-01", "1985-05-05"]),
            "sex": ["M", "M", "F"],
            "area_id": ["W01", "W01", "W02"],
        }
    )
    clusters = link_people(records, LinkageSettings()).clusters
    assert clusters.set_index("source_id")["cluster_key"].to_dict() == {
        "N1": "council:C1",
        "C1": "council:C1",
        "P1": "provider:P1",
    }


SHORT = ["King", "Ward", "Hall", "Rees", "Bell", "Shaw", "Cook", "Lane", "Hill", "Gray"]


def records_with_short_name_typos(people: int, seed: int) -> pd.DataFrame:
    """Each person a police record, half of them a council one (15% of those without a date of birth); every
    tenth person has a short surname and a provider record (no sex or area, as the providers' extracts have)
    with its third letter mistyped: one edit, Jaro-Winkler 0.87 ("King" and "Kiug")."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(people):
        short = p % 10 == 0
        first, last = rng.choice(FIRST), SHORT[(p // 10) % len(SHORT)] if short else rng.choice(LAST)
        birth = pd.Timestamp("1960-01-01") + pd.Timedelta(days=int(rng.integers(0, 40 * 365)))
        sex, area = rng.choice(["M", "F"]), f"W{rng.integers(0, 40):03d}"
        rows.append(("police", f"N{p}", first, last, birth, sex, area, p))
        if rng.random() < 0.5:
            council_birth = birth if rng.random() > 0.15 else pd.NaT
            rows.append(("council", f"C{p}", first.upper(), last, council_birth, sex, area, p))
        if short:
            typo = last[:2] + ("u" if last[2] != "u" else "o") + last[3:]
            rows.append(("provider", f"P{p}", first, typo, birth, None, None, p))
    columns = ["source", "source_id", "first_name", "last_name", "birth_date", "sex", "area_id", "person"]
    return pd.DataFrame(rows, columns=columns)


@pytest.mark.parametrize("one_edit", [True, False])
def test_one_typo_in_a_short_name_links_with_the_same_birth_date(one_edit):
    """A record with one typo in a short surname and the same date of birth joins its person (the one-edit
    level); without that level the forename alone agrees exactly and none of them links."""
    records = records_with_short_name_typos(600, seed=5)
    comparisons = [NamesComparison(one_edit=one_edit), *DEFAULT_COMPARISONS[1:]]
    linkage = link_people(records.drop(columns="person"), LinkageSettings(seed=3, comparisons=comparisons))
    linked = records.merge(linkage.clusters, on=["source", "source_id"])
    typos = linked.loc[linked["source"] == "provider", "person"]
    whole = linked[linked["person"].isin(typos)].groupby("person")["cluster_key"].nunique().eq(1)
    assert len(whole) == 60
    assert whole.all() if one_edit else not whole.any()


def test_the_source_is_compared_and_one_source_alone_still_links():
    """The feed a record comes from is a default comparison (EM weighs two ids of one agency against one id
    each of two); an extract of one agency only, where it says nothing, links as the others."""
    assert ExactComparison(column="source") in DEFAULT_COMPARISONS
    records, truth = people_records(300, seed=2)
    one = records.assign(source="police", source_id=[f"N{i}" for i in range(len(records))])
    linked = one.assign(truth=truth).merge(link_people(one, LinkageSettings(seed=1)).clusters, on="source_id")
    exact = linked.groupby(["truth", "first_name", "last_name", "birth_date"], dropna=True)["cluster_key"]
    assert (exact.nunique() == 1).all()
    assert linked["cluster_key"].nunique() < len(one)


def test_records_too_few_to_estimate_from_are_one_clear_error():
    from riskloop.ingest.linkage import LinkageError

    records = pd.DataFrame(
        {
            "source": ["police", "police", "council", "provider"],
            "source_id": ["1", "2", "A", "x"],
            "first_name": ["Ann", "Bob", "Cai", "Dee"],
            "last_name": ["Jones", "Evans", "Price", "Hughes"],
            "birth_date": pd.to_datetime(["1990-01-01", "1985-05-05", None, "2001-02-03"]),
            "sex": ["F", "M", "M", "F"],
            "area_id": ["W1", "W2", "W1", "W3"],
        }
    )
    # Splink's predict fails on these four with names, birth date, sex and area compared (a level no pair
    # reaches has no u); with the source compared too it scores no pair and leaves each its own cluster
    settings = LinkageSettings(seed=1, comparisons=DEFAULT_COMPARISONS[:4])
    with pytest.raises(LinkageError, match="could not be estimated from 4 person records"):
        link_people(records, settings)
    assert link_people(records, LinkageSettings(seed=1)).clusters["cluster_key"].nunique() == 4
