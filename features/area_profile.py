"""Area profiles at T and the community safety audit view behind the area dashboard (`community_audit`).

Per small area or local authority: managed cohort size, demographics, incident mix, harm and its
trend, repeat-victim share and intervention coverage. Built from a snapshot (the cohort at T), so
it never looks past T.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np
import pandas as pd

from riskloop.features.catalogue import (
    AGE,
    REPEAT_VICTIM,
    FeatureSpec,
    area_rate_feature,
    area_trend_feature,
    harm_feature,
    trend_feature,
)
from riskloop.features.vocabulary import INCIDENT_TYPES

if TYPE_CHECKING:
    from riskloop.features.validate import Dataset


def area_profile(
    snapshot: pd.DataFrame,
    areas: pd.DataFrame,
    catalogue: list[FeatureSpec],
    level: Literal["area_id", "local_authority"] = "area_id",
) -> pd.DataFrame:
    """One row per area (or local authority) of the snapshot's single as-of date; `catalogue` names
    the snapshot's features and their families."""
    if snapshot["as_of"].nunique() != 1:
        raise ValueError("an area profile is for one as-of date; filter the snapshot first")
    key = snapshot[level]
    programmes = [s.name for s in catalogue if s.family == "intervention"]
    indicators = pd.DataFrame(
        {
            "cohort": 1,
            "share_female": snapshot["sex"].eq("F") if "sex" in snapshot else pd.NA,
            "share_under_25": snapshot[AGE] < 25,
            "share_minority_ethnic": ~snapshot["ethnicity"].isin(["White", "Unknown"])
            if "ethnicity" in snapshot
            else pd.NA,
            "repeat_victim_share": snapshot[REPEAT_VICTIM],
            "intervention_coverage": snapshot[programmes].sum(axis=1) > 0 if programmes else False,
            "harm_trend_90d": snapshot[trend_feature("offending")],
        },
        index=snapshot.index,
    ).astype(float)
    profile = indicators.groupby(key).mean()
    profile["cohort"] = key.value_counts()
    profile["offending_harm_365d"] = snapshot.groupby(key)[harm_feature("offending", 365)].sum()
    for t in INCIDENT_TYPES:
        cols = [
            s.name for s in catalogue if s.family == "incident_count" and s.incident_type == t and s.window_days == 365
        ]
        profile[f"{t}_involvements_365d"] = snapshot[cols].sum(axis=1).groupby(key).sum()
    if level == "area_id":
        rates = [area_rate_feature(t) for t in INCIDENT_TYPES] + [area_trend_feature(t) for t in INCIDENT_TYPES]
        profile = profile.join(snapshot.groupby("area_id")[rates].first())
        profile = profile.join(areas.set_index("area_id")[["local_authority", "population", "deprivation_rank"]])
    else:
        profile = profile.join(areas.groupby("local_authority")["population"].sum())
    profile.insert(0, "as_of", snapshot["as_of"].iloc[0])
    return profile.rename_axis(level).reset_index()


# --- the community safety audit view (the dashboard's numbers), straight from a validated data set ---

YEAR_DAYS = 365
TREND_MONTHS = 36
RISK_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
PROFILE_COLUMNS = ("age_band", "sex", "ethnicity", "tier")


class Coverage(TypedDict):
    """What a community audit covers: first and last incident, data end, as-of, running programmes, rows per table."""

    first_incident: date | None
    last_incident: date | None
    data_end: date
    as_of: date
    running_interventions: int
    rows: dict[str, dict[str, int]]  # table -> read, valid, quarantined


@dataclass
class CommunityAudit:
    """Raw counts of a data set at T, per local authority and small area (disclosure is the report's job).

    Incidents are placed in the small areas of the people involved (an incident involving people of two
    areas counts once in each, once in a local authority); the 12 months are [T - 365 days, T) and the
    previous 12 months the year before. Harm is each incident's harm weight, summed.
    """

    as_of: date
    coverage: Coverage
    local_authorities: pd.DataFrame  # one row per LA (see `community_audit`)
    areas: pd.DataFrame  # one row per small area
    monthly: pd.DataFrame  # local_authority, month, incidents, harm, domestic_abuse (36 months to T)
    mix: pd.DataFrame  # local_authority, type, incidents (12 months), incidents_before
    deprivation: pd.DataFrame  # local_authority, deprivation_quintile, population, incidents
    programmes: pd.DataFrame  # local_authority, programme, active, started_12m
    profiles: pd.DataFrame  # local_authority, cohort (managed/listed), characteristic, level, n
    risk: pd.DataFrame  # local_authority, risk_bin, n (the listed; empty without lists)
    quarantine: pd.DataFrame  # table, rule, rows
    missing: pd.DataFrame  # table, column, missing, rows (checked: an open intervention has no end yet)
    has_lists: bool = False


def _incident_areas(dataset: Dataset) -> pd.DataFrame:
    """One row per (incident, area): date, type, harm (the incident's largest harm weight), local authority."""
    people = dataset.people[["person_id", "area_id"]]
    rows = dataset.incidents.merge(people, on="person_id", how="inner")
    per = (
        rows.groupby(["incident_id", "area_id"], sort=False, observed=True)
        .agg(date=("date", "min"), type=("type", "first"), harm=("harm", "max"))
        .reset_index()
    )
    return per.merge(dataset.areas[["area_id", "local_authority"]], on="area_id", how="left")


def _age_bands(birth: pd.Series, as_of: date) -> pd.Series:
    from riskloop.features.snapshot import AGE_BANDS

    age = (pd.Timestamp(as_of) - pd.to_datetime(birth)).dt.days / 365.25
    edges = [lo for lo, _ in AGE_BANDS]
    names = [name for _, name in AGE_BANDS]
    position = np.searchsorted(edges, age.fillna(0).to_numpy(), side="right") - 1
    return pd.Series(np.asarray(names, dtype=object)[np.clip(position, 0, None)], index=birth.index)


def _profile(people: pd.DataFrame, cohort: str) -> pd.DataFrame:
    """Long counts of a person-level frame (local_authority + PROFILE_COLUMNS present)."""
    parts = []
    for column in PROFILE_COLUMNS:
        if column in people:
            counts = people.groupby(["local_authority", column], observed=True).size().rename("n").reset_index()
            parts.append(counts.rename(columns={column: "level"}).assign(characteristic=column, cohort=cohort))
    if not parts:
        return pd.DataFrame(columns=["local_authority", "cohort", "characteristic", "level", "n"])
    return pd.concat(parts, ignore_index=True)[["local_authority", "cohort", "characteristic", "level", "n"]]


def community_audit(dataset: Dataset, as_of: date, prioritisation: pd.DataFrame | None = None) -> CommunityAudit:
    """The community safety audit view at `as_of` (records dated before it only): scale, where and when,
    who is affected, the managed cohort (people with an intervention active at T, and the listed people
    of `prioritisation`, a `riskloop score` frame), data quality."""
    t = pd.Timestamp(as_of)
    year_ago, two_years_ago = t - pd.Timedelta(days=YEAR_DAYS), t - pd.Timedelta(days=2 * YEAR_DAYS)
    areas = dataset.areas[["area_id", "local_authority", "population", "deprivation_rank"]].copy()
    rank = areas["deprivation_rank"].rank(method="first")  # quintiles among the data set's own areas, not national
    areas["deprivation_quintile"] = np.ceil(5 * rank / len(areas)).astype(int).clip(1, 5)
    incidents = _incident_areas(dataset)
    incidents = incidents[incidents["date"] < t]
    last = incidents[incidents["date"] >= year_ago]
    before = incidents[(incidents["date"] >= two_years_ago) & (incidents["date"] < year_ago)]

    by_area = areas.set_index("area_id")
    by_area["incidents"] = last.groupby("area_id").size()
    by_area["incidents_before"] = before.groupby("area_id").size()
    by_area["harm"] = last.groupby("area_id")["harm"].sum()
    by_area["domestic_abuse"] = last[last["type"] == "domestic_abuse"].groupby("area_id").size()
    by_area[["incidents", "incidents_before", "harm", "domestic_abuse"]] = by_area[
        ["incidents", "incidents_before", "harm", "domestic_abuse"]
    ].fillna(0)

    def distinct(frame: pd.DataFrame) -> pd.Series:
        return frame.drop_duplicates(["incident_id", "local_authority"]).groupby("local_authority").size()

    la_last = last.drop_duplicates(["incident_id", "local_authority"])
    la = areas.groupby("local_authority").agg(population=("population", "sum"), areas=("area_id", "size"))
    la["incidents"] = distinct(last)
    la["incidents_before"] = distinct(before)
    la["harm"] = la_last.groupby("local_authority")["harm"].sum()
    la["domestic_abuse"] = distinct(last[last["type"] == "domestic_abuse"])

    # who is affected: victims and repeat victims in the last 12 months (people, by where they live)
    people = dataset.people.merge(areas[["area_id", "local_authority"]], on="area_id", how="left")
    rows = dataset.incidents[(dataset.incidents["date"] < t) & (dataset.incidents["date"] >= year_ago)]
    rows = rows.merge(people[["person_id", "local_authority"]], on="person_id", how="inner")
    victims = rows[rows["role"] == "victim"].groupby(["local_authority", "person_id"]).size()
    la["victims"] = (victims >= 1).groupby(level=0).sum()
    la["repeat_victims"] = (victims >= 2).groupby(level=0).sum()
    da = (
        rows[(rows["role"] == "victim") & (rows["type"] == "domestic_abuse")]
        .groupby(["local_authority", "person_id"])
        .size()
    )
    la["da_victims"] = (da >= 1).groupby(level=0).sum()
    la["da_repeat_victims"] = (da >= 2).groupby(level=0).sum()
    la["involved"] = rows.groupby("local_authority")["person_id"].nunique()

    # the managed cohort: an intervention active at T
    iv = dataset.interventions.merge(
        people[["person_id", "local_authority", "birth_date", "sex", "ethnicity"]], on="person_id", how="inner"
    )
    end = iv["end_date"] if "end_date" in iv else pd.Series(pd.NaT, index=iv.index)
    active = iv[(iv["start_date"] < t) & (end.isna() | (end >= t))]
    started = iv[(iv["start_date"] < t) & (iv["start_date"] >= year_ago)]
    managed = active.sort_values("start_date").drop_duplicates("person_id", keep="last").copy()
    la["managed"] = managed.groupby("local_authority").size()
    covered = set(iv.loc[(iv["start_date"] < t) & (end.isna() | (end >= year_ago)), "person_id"])
    involved_people = rows[["local_authority", "person_id"]].drop_duplicates()
    la["involved_covered"] = (
        involved_people[involved_people["person_id"].isin(covered)].groupby("local_authority").size()
    )
    programmes = (
        pd.concat(
            [
                active.groupby(["local_authority", "programme"]).size().rename("active"),
                started.groupby(["local_authority", "programme"]).size().rename("started_12m"),
            ],
            axis=1,
        )
        .fillna(0)
        .astype(int)
        .reset_index()
    )
    managed["age_band"] = _age_bands(managed["birth_date"], as_of)
    profiles = [_profile(managed, "managed")]

    risk = pd.DataFrame(columns=["local_authority", "risk_bin", "n"])
    if prioritisation is not None:
        listed = prioritisation[prioritisation["listed"].astype(bool)][
            ["person_id", "local_authority", "risk", "prevention_tier"]
        ]
        listed = listed.merge(
            dataset.people[["person_id", "birth_date", "sex", "ethnicity"]], on="person_id", how="left"
        )
        listed["age_band"] = _age_bands(listed["birth_date"], as_of).where(listed["birth_date"].notna(), "unknown")
        listed = listed.rename(columns={"prevention_tier": "tier"}).fillna({"sex": "unknown", "ethnicity": "unknown"})
        profiles.append(_profile(listed, "listed"))
        la["listed"] = listed.groupby("local_authority").size()
        bins = pd.cut(
            listed["risk"],
            RISK_BINS,
            include_lowest=True,
            labels=[f"{lo:.0%}-{hi:.0%}" for lo, hi in zip(RISK_BINS, RISK_BINS[1:])],
        )
        risk = listed.groupby(["local_authority", bins], observed=False).size().rename("n").reset_index()
        risk = risk.rename(columns={"risk": "risk_bin"})
        risk["risk_bin"] = risk["risk_bin"].astype(str)
    la = la.fillna(0)
    for column in la.columns:
        if column != "harm":
            la[column] = la[column].astype(int)

    months = pd.period_range(end=(t - pd.Timedelta(days=1)).to_period("M"), periods=TREND_MONTHS, freq="M")
    recent = incidents[incidents["date"] >= months[0].start_time].drop_duplicates(["incident_id", "local_authority"])
    recent = recent.assign(month=recent["date"].dt.to_period("M"), da=recent["type"].eq("domestic_abuse"))
    grid = pd.MultiIndex.from_product([la.index, months], names=["local_authority", "month"])
    monthly = (
        recent.groupby(["local_authority", "month"])
        .agg(incidents=("incident_id", "size"), harm=("harm", "sum"), domestic_abuse=("da", "sum"))
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    monthly["month"] = monthly["month"].dt.start_time

    mix_grid = pd.MultiIndex.from_product([la.index, INCIDENT_TYPES], names=["local_authority", "type"])
    mix = (
        pd.concat(
            [distinct_by(last, "type").rename("incidents"), distinct_by(before, "type").rename("incidents_before")],
            axis=1,
        )
        .reindex(mix_grid, fill_value=0)
        .fillna(0)
        .astype(int)
        .reset_index()
    )
    deprivation = (
        by_area.reset_index()
        .groupby(["local_authority", "deprivation_quintile"])
        .agg(population=("population", "sum"), areas=("area_id", "size"), incidents=("incidents", "sum"))
        .reset_index()
    )
    quarantine = pd.DataFrame(
        [(t_.table, rule, n) for t_ in dataset.report.tables.values() for rule, n in sorted(t_.reasons.items())],
        columns=["table", "rule", "rows"],
    )
    missing = []
    running = (
        dataset.interventions["end_date"].isna()
        if "end_date" in dataset.interventions
        else pd.Series(True, index=dataset.interventions.index)
    )
    for name in ("areas", "people", "incidents", "interventions"):
        frame = getattr(dataset, name)
        for column in frame.columns:
            # an intervention still running has no end date or completion yet: not missing
            rows = frame[~running] if name == "interventions" and column in ("end_date", "completed") else frame
            missing.append((name, column, int(rows[column].isna().sum()), len(rows)))
    coverage: Coverage = {
        "first_incident": dataset.incidents["date"].min().date() if len(dataset.incidents) else None,
        "last_incident": dataset.incidents["date"].max().date() if len(dataset.incidents) else None,
        "data_end": dataset.end,
        "as_of": as_of,
        "running_interventions": int(running.sum()),
        "rows": {
            t_.table: {"read": t_.read, "valid": t_.valid, "quarantined": t_.quarantined}
            for t_ in dataset.report.tables.values()
        },
    }
    return CommunityAudit(
        as_of=as_of,
        coverage=coverage,
        local_authorities=la.reset_index(),
        areas=by_area.reset_index(),
        monthly=monthly,
        mix=mix,
        deprivation=deprivation,
        programmes=programmes,
        profiles=pd.concat(profiles, ignore_index=True),
        risk=risk,
        quarantine=quarantine,
        missing=pd.DataFrame(missing, columns=["table", "column", "missing", "rows"]),
        has_lists=prioritisation is not None,
    )


def distinct_by(frame: pd.DataFrame, column: str) -> pd.Series:
    """Incidents per (local authority, `column`), each incident once per local authority."""
    return frame.drop_duplicates(["incident_id", "local_authority"]).groupby(["local_authority", column]).size()
