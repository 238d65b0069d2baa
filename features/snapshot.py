"""As-of snapshots: the cohort at T, point-in-time features, the label, and protected columns.

Only records dated strictly before T feed a feature; the label looks at (T, T + horizon]. A record
dated exactly T is in neither (docs/architecture.md, "The as-of rule"). All aggregation is vectorised numpy
(`bincount` over cohort x type x role codes), measured faster than DuckDB here (benchmarks/features.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

from riskloop.features.catalogue import (
    AGE, DEFAULT_WINDOWS, DEPRIVATION, FIRST_INCIDENT, HALF_LIFE_DAYS, HIGH_HARM_VICTIMISATIONS, HOUSEHOLD_ADULTS,
    HOUSEHOLD_CHILDREN, REPEAT_VICTIM, ROLE_TYPES, FeatureSpec, active_feature, any_count_feature, area_rate_feature,
    area_trend_feature, build_catalogue, co_involved_feature, count_feature, days_since_feature, decayed_feature,
    harm_feature, history_count_feature, history_harm_feature, household_count_feature, household_known_feature,
    la_rate_feature, prior_completed_feature, prior_count_feature, trend_feature,
)
from riskloop.features.validate import Dataset
from riskloop.features.vocabulary import HIGH_HARM_TYPES, INCIDENT_TYPES, OFFENDING_ROLES, ROLES

LabelName = Literal["escalation", "repeat_victimisation"]
AGE_BANDS = ((0, "0-17"), (18, "18-24"), (25, "25-34"), (35, "35-49"), (50, "50-64"), (65, "65+"))
ID_COLUMNS = ("person_id", "as_of", "area_id", "local_authority")
#: The protected characteristics a snapshot can carry for audits (disability only where the data has it).
SNAPSHOT_PROTECTED = ("sex", "ethnicity", "disability", "age_band", "deprivation_quintile")


@dataclass(frozen=True)
class SnapshotConfig:
    """How to build a snapshot: label, horizon, lookback, windows and the high-harm threshold."""

    label: LabelName = "escalation"
    horizon_days: int = 365
    lookback_days: int = 1095
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    harm_threshold: float = 6.0
    protected: tuple[str, ...] = SNAPSHOT_PROTECTED

    def __post_init__(self) -> None:
        if self.label not in ("escalation", "repeat_victimisation"):
            raise ValueError(f"unknown label '{self.label}' (escalation or repeat_victimisation)")
        if max(self.windows) > self.lookback_days:
            raise ValueError("every feature window must fit in the lookback")
        if self.horizon_days < 1:
            raise ValueError(f"horizon_days must be at least 1 (got {self.horizon_days})")


def check_coverage(data: Dataset, as_of_dates: list[date]) -> None:
    """Raise ValueError for an as-of date with no records before it or after the data's end."""
    check_as_of_dates(None if data.incidents.empty else data.incidents["date"].min().date(), data.end, as_of_dates)


def check_as_of_dates(first: date | None, end: date, as_of_dates: list[date]) -> None:
    """`check_coverage` of a data set whose first valid incident is on `first` (None: it has none)."""
    if first is None:
        raise ValueError("no valid incidents: nothing to build features from")
    for t in sorted(as_of_dates):
        if t <= first:
            raise ValueError(f"as-of {t} is not after the data's first incident ({first}): no records before it")
        if t > end:
            raise ValueError(f"as-of {t} is after the data's end ({end})")


def _days(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[D]").astype(np.int64)


@dataclass
class PreparedData:
    """A validated data set as integer-coded numpy arrays, built once and reused for every T."""

    person_id: pd.api.extensions.ExtensionArray   # Arrow strings: compact for millions of pseudonyms
    person_area: np.ndarray
    birth_day: np.ndarray
    sex: pd.Categorical
    ethnicity: pd.Categorical
    disability: pd.Categorical | None
    household: np.ndarray | None   # household code per person (one of their own if blank); None without household_id
    area_id: np.ndarray
    area_la: np.ndarray
    la_names: np.ndarray
    area_population: np.ndarray
    area_decile: np.ndarray
    inc_person: np.ndarray
    inc_incident: np.ndarray
    inc_day: np.ndarray
    inc_type: np.ndarray
    inc_role: np.ndarray
    inc_harm: np.ndarray
    iv_person: np.ndarray
    iv_programme: np.ndarray
    iv_start: np.ndarray
    iv_end: np.ndarray
    iv_completed: np.ndarray
    programmes: tuple[str, ...]
    end_day: int
    fingerprint: str
    # A partition of the population (riskloop.spark) also carries what it needs from the rest:
    # rows of other people in its incidents (for co-involvement; person codes past its own people)
    # and the population's incident counts by area per as-of day (see `area_counts`).
    other_incident: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    other_person: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    other_day: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    area_counts: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, data: Dataset, programmes: tuple[str, ...] | None = None,
                     others: pd.DataFrame | None = None, area_counts: dict[int, np.ndarray] | None = None
                     ) -> "PreparedData":
        """Arrays of a data set. A partition of people passes the whole data set's `programmes`, the
        `others` (incident_id, person_id, date) sharing its incidents, and `area_counts` by as-of day."""
        people = data.people.sort_values("person_id", kind="stable").reset_index(drop=True)
        areas = data.areas.reset_index(drop=True)
        area_index = pd.Index(areas["area_id"])
        person_index = pd.Index(people["person_id"])
        la_codes, la_names = pd.factorize(areas["local_authority"], sort=True)
        rank = areas["deprivation_rank"].to_numpy(dtype=float)
        decile = np.ceil(10 * pd.Series(rank).rank(method="first").to_numpy() / len(rank)).astype(np.int64)
        inc = data.incidents
        iv = data.interventions
        programmes = tuple(sorted(iv["programme"].unique())) if programmes is None else programmes
        others = pd.DataFrame({"incident_id": [], "person_id": [], "date": []}) if others is None else others
        incident_codes = pd.factorize(pd.concat([inc["incident_id"], others["incident_id"]], ignore_index=True))[0]
        end = iv["end_date"] if "end_date" in iv else pd.Series(pd.NaT, index=iv.index)
        completed = iv["completed"] if "completed" in iv else pd.Series(pd.NA, index=iv.index, dtype="boolean")
        far_future = np.iinfo(np.int64).max // 2
        return cls(
            person_id=people["person_id"].astype("string[pyarrow]").array,
            person_area=area_index.get_indexer(people["area_id"]),
            birth_day=_days(people["birth_date"]),
            sex=pd.Categorical(people["sex"]), ethnicity=pd.Categorical(people["ethnicity"]),
            disability=pd.Categorical(people["disability"].fillna("U")) if "disability" in people else None,
            household=_household_codes(people["household_id"]) if "household_id" in people else None,
            area_id=areas["area_id"].to_numpy(dtype=object), area_la=la_codes.astype(np.int64),
            la_names=np.asarray(la_names, dtype=object),
            area_population=areas["population"].to_numpy(dtype=float), area_decile=decile,
            inc_person=person_index.get_indexer(inc["person_id"]),
            inc_incident=incident_codes[:len(inc)].astype(np.int64),
            inc_day=_days(inc["date"]),
            inc_type=pd.Index(INCIDENT_TYPES).get_indexer(inc["type"]).astype(np.int64),
            inc_role=pd.Index(ROLES).get_indexer(inc["role"]).astype(np.int64),
            inc_harm=inc["harm"].to_numpy(dtype=float),
            iv_person=person_index.get_indexer(iv["person_id"]),
            iv_programme=pd.Index(programmes).get_indexer(iv["programme"]).astype(np.int64),
            iv_start=_days(iv["start_date"]),
            iv_end=np.where(end.isna(), far_future, end.to_numpy(dtype="datetime64[D]").astype(np.int64)),
            iv_completed=completed.fillna(False).to_numpy(dtype=bool),
            programmes=programmes, end_day=int(np.datetime64(data.end, "D").astype(np.int64)),
            fingerprint=data.fingerprint,
            other_incident=incident_codes[len(inc):].astype(np.int64),
            other_person=len(people) + pd.factorize(others["person_id"])[0].astype(np.int64),
            other_day=_days(others["date"]) if len(others) else np.empty(0, np.int64),
            area_counts=area_counts or {},
        )

    def catalogue(self, config: SnapshotConfig) -> list[FeatureSpec]:
        return build_catalogue(self.programmes, config.windows, households=self.household is not None)


def _household_codes(household_id: pd.Series) -> np.ndarray:
    """One integer per household; a person with no household_id is a household of their own."""
    codes, uniques = pd.factorize(household_id)
    blank = np.flatnonzero(codes < 0)
    codes[blank] = len(uniques) + np.arange(len(blank))
    return codes.astype(np.int64)


_OFFENDING = np.isin(np.array(ROLES), OFFENDING_ROLES)
_VICTIM = ROLES.index("victim")
_HIGH_HARM_TYPE = np.isin(np.array(INCIDENT_TYPES), HIGH_HARM_TYPES)
_DOMESTIC_ABUSE = INCIDENT_TYPES.index("domestic_abuse")


def _high_harm(d: PreparedData, rows: np.ndarray, threshold: float) -> np.ndarray:
    return (d.inc_harm[rows] > threshold) | _HIGH_HARM_TYPE[d.inc_type[rows]]


def _incident_features(d: PreparedData, rows: np.ndarray, pos: np.ndarray, n: int, t: int,
                       config: SnapshotConfig) -> dict[str, np.ndarray]:
    """Counts, harm sums, recency, trends, repeat victimisation and co-involvement."""
    age_days = t - d.inc_day[rows]
    types, roles, harm = d.inc_type[rows], d.inc_role[rows], d.inc_harm[rows]
    offending, victim = _OFFENDING[roles], roles == _VICTIM
    n_types, n_roles = len(INCIDENT_TYPES), len(ROLES)
    cols: dict[str, np.ndarray] = {}
    cell = pos * (n_types * n_roles) + types * n_roles + roles
    for w in config.windows:
        inside = age_days <= w
        grid = np.bincount(cell[inside], minlength=n * n_types * n_roles).reshape(n, n_types, n_roles)
        for r, role in enumerate(ROLES):
            for incident_type in ROLE_TYPES[role]:
                cols[count_feature(role, incident_type, w)] = grid[:, INCIDENT_TYPES.index(incident_type), r]
        cols[harm_feature("offending", w)] = np.bincount(pos[inside & offending], harm[inside & offending], minlength=n)
        cols[harm_feature("victim", w)] = np.bincount(pos[inside & victim], harm[inside & victim], minlength=n)
        cols[any_count_feature(w)] = grid.sum(axis=(1, 2))
    never = config.lookback_days + 1
    for who, mask in (("offending", offending), ("victim", victim), ("any", np.ones_like(offending))):
        last = np.full(n, never, dtype=np.int64)
        np.minimum.at(last, pos[mask], age_days[mask])
        cols[days_since_feature(who)] = last
    recent, earlier = age_days <= 90, (age_days > 90) & (age_days <= 360)
    for who, mask in (("offending", offending), ("any", np.ones_like(offending))):
        cols[trend_feature(who)] = (np.bincount(pos[mask & recent], minlength=n)
                                    - np.bincount(pos[mask & earlier], minlength=n) / 3.0)
    year = age_days <= 365
    cols[REPEAT_VICTIM] = (np.bincount(pos[victim & year], minlength=n) >= 2).astype(np.int64)
    cols[HIGH_HARM_VICTIMISATIONS] = np.bincount(
        pos[victim & year & _high_harm(d, rows, config.harm_threshold)], minlength=n)
    cols[co_involved_feature(max(config.windows))] = _co_involved(d, rows, pos, n, t, config.lookback_days)
    return cols


def _co_involved(d: PreparedData, rows: np.ndarray, pos: np.ndarray, n: int, t: int, lookback: int) -> np.ndarray:
    """Distinct other people sharing an incident in the lookback with each cohort member (people outside
    a partition count through its `other_*` rows, which hold no cohort position: -1)."""
    others = (d.other_day < t) & (d.other_day >= t - lookback)
    pairs = pd.DataFrame({"incident": np.r_[d.inc_incident[rows], d.other_incident[others]],
                          "pos": np.r_[pos, np.full(int(others.sum()), -1)],
                          "person": np.r_[d.inc_person[rows], d.other_person[others]]})
    shared = pairs[pairs.duplicated("incident", keep=False)]
    links = shared.merge(shared, on="incident", suffixes=("", "_other"))
    links = links.loc[(links["person"] != links["person_other"]) & (links["pos"] >= 0), ["pos", "person_other"]]
    return np.bincount(links.drop_duplicates()["pos"].to_numpy(), minlength=n)


def _history_rows(d: PreparedData, cohort: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(incident rows of cohort members dated before T, at any age; each row's position in the cohort)."""
    slot = np.full(len(d.birth_day), -1, dtype=np.int64)
    slot[cohort] = np.arange(len(cohort))
    past = np.flatnonzero(d.inc_day < t)
    pos = slot[d.inc_person[past]]
    mine = pos >= 0
    return past[mine], pos[mine]


def _history_features(d: PreparedData, rows: np.ndarray, pos: np.ndarray, n: int, t: int) -> dict[str, np.ndarray]:
    """Whole-history counts and harm by role, days since the first record, and their time-decayed sums."""
    age_days = t - d.inc_day[rows]
    roles, harm = d.inc_role[rows], d.inc_harm[rows]
    weight = np.exp2(-age_days / HALF_LIFE_DAYS)
    cols: dict[str, np.ndarray] = {}
    for who, mask in (("offending", _OFFENDING[roles]), ("victim", roles == _VICTIM)):
        cols[history_count_feature(who)] = np.bincount(pos[mask], minlength=n)
        cols[history_harm_feature(who)] = np.bincount(pos[mask], harm[mask], minlength=n)
        cols[decayed_feature(f"{who}_count", HALF_LIFE_DAYS)] = np.bincount(pos[mask], weight[mask], minlength=n)
        cols[decayed_feature(f"{who}_harm", HALF_LIFE_DAYS)] = np.bincount(pos[mask], (weight * harm)[mask], minlength=n)
    first = np.zeros(n, dtype=np.int64)
    np.maximum.at(first, pos, age_days)
    cols[FIRST_INCIDENT] = first
    return cols


def _household_makeup(d: PreparedData, cohort: np.ndarray, t: int) -> dict[str, np.ndarray]:
    """Other members of each person's household by age at T (people born after T are not counted)."""
    age = (t - d.birth_day) / 365.25
    household = d.household[cohort]
    return {name: np.bincount(d.household[members], minlength=len(d.household))[household] - members[cohort]
            for name, members in ((HOUSEHOLD_ADULTS, age >= 18), (HOUSEHOLD_CHILDREN, (age > 0) & (age < 18)))}


def _household_involvements(d: PreparedData, cohort: np.ndarray, rows: np.ndarray, pos: np.ndarray, t: int,
                            config: SnapshotConfig) -> dict[str, np.ndarray]:
    """Involvements of the other members of each person's household. Windows fit in the lookback, so a
    member with any record in a window is in the cohort: sums over the cohort's households suffice."""
    n = len(cohort)
    _, household = np.unique(d.household[cohort], return_inverse=True)

    def others(values: np.ndarray) -> np.ndarray:
        values = values.astype(float)
        return np.bincount(household, values)[household] - values

    age_days = t - d.inc_day[rows]
    roles = d.inc_role[rows]
    involvements = (("offending", _OFFENDING[roles]), ("victim", roles == _VICTIM),
                    ("domestic_abuse", d.inc_type[rows] == _DOMESTIC_ABUSE))
    cols = {household_count_feature(who, w): others(np.bincount(pos[mask & (age_days <= w)], minlength=n))
            for who, mask in involvements for w in config.windows}
    window = max(config.windows)
    cols[household_known_feature(window)] = others(np.bincount(pos[age_days <= window], minlength=n) > 0)
    return cols


def _intervention_features(d: PreparedData, cohort: np.ndarray, t: int) -> dict[str, np.ndarray]:
    n = len(cohort)
    started = (d.iv_start < t) & np.isin(d.iv_person, cohort)
    pos = np.searchsorted(cohort, d.iv_person[started])
    prog, end, completed = d.iv_programme[started], d.iv_end[started], d.iv_completed[started]
    cols: dict[str, np.ndarray] = {}
    for k, p in enumerate(d.programmes):
        mine = prog == k
        cols[prior_count_feature(p)] = np.bincount(pos[mine], minlength=n)
        # completion is only known once the programme ended before T
        cols[prior_completed_feature(p)] = np.bincount(pos[mine & (end < t) & completed], minlength=n)
        cols[active_feature(p)] = (np.bincount(pos[mine & (end >= t)], minlength=n) > 0).astype(np.int64)
    return cols


def area_counts(d: PreparedData, t: int) -> np.ndarray:
    """Incidents by small area and type in the year before T and in the year before that: (2, areas, types).
    The only population-wide input of a snapshot; a partition's counts add up to the population's."""
    return count_by_area(d.person_area[d.inc_person], d.inc_day, d.inc_type, len(d.area_id), t)


def count_by_area(inc_area: np.ndarray, inc_day: np.ndarray, inc_type: np.ndarray, n_areas: int, t: int) -> np.ndarray:
    """`area_counts` of incident rows given as (area code, day, type code) arrays."""
    n_types = len(INCIDENT_TYPES)
    age_days = t - inc_day
    past = inc_day < t
    windows = (past & (age_days <= 365), past & (age_days > 365) & (age_days <= 730))
    return np.stack([np.bincount(inc_area[w] * n_types + inc_type[w], minlength=n_areas * n_types)
                     .reshape(n_areas, n_types) for w in windows])


def _area_features(d: PreparedData, t: int, cohort_area: np.ndarray) -> dict[str, np.ndarray]:
    """Population-level rates per 1,000 residents by incident type: small area and local authority."""
    counts = d.area_counts[t] if t in d.area_counts else area_counts(d, t)

    def rates(window_counts: np.ndarray, population: np.ndarray) -> np.ndarray:
        return 1000 * window_counts / np.maximum(population, 1)[:, None]

    area_rate = rates(counts[0], d.area_population)
    area_trend = area_rate - rates(counts[1], d.area_population)
    n_la = len(d.la_names)
    la_population = np.bincount(d.area_la, d.area_population, minlength=n_la)
    la_counts = np.zeros((n_la, counts.shape[2]), dtype=np.int64)
    np.add.at(la_counts, d.area_la, counts[0])
    la_rate = rates(la_counts, la_population)
    cols: dict[str, np.ndarray] = {}
    for k, incident_type in enumerate(INCIDENT_TYPES):
        cols[area_rate_feature(incident_type)] = area_rate[cohort_area, k]
        cols[area_trend_feature(incident_type)] = area_trend[cohort_area, k]
        cols[la_rate_feature(incident_type)] = la_rate[d.area_la[cohort_area], k]
    cols[DEPRIVATION] = d.area_decile[cohort_area]
    return cols


def _labels(d: PreparedData, cohort: np.ndarray, t: int, config: SnapshotConfig) -> np.ndarray:
    """1/0 per cohort member, or NaN when the horizon reaches past the data's end."""
    if t + config.horizon_days > d.end_day:
        return np.full(len(cohort), np.nan)
    rows = np.flatnonzero((d.inc_day > t) & (d.inc_day <= t + config.horizon_days))
    return np.isin(cohort, d.inc_person[rows[label_event(d, rows, config)]]).astype(float)


def label_event(d: PreparedData, rows: np.ndarray, config: SnapshotConfig) -> np.ndarray:
    """Per incident row: is it the label's event (high-harm offending, or high-harm victimisation)?"""
    role = d.inc_role[rows]
    involved = _OFFENDING[role] if config.label == "escalation" else role == _VICTIM
    return involved & _high_harm(d, rows, config.harm_threshold)


def _age_band(age: np.ndarray) -> np.ndarray:
    edges = np.array([lo for lo, _ in AGE_BANDS])
    names = np.array([name for _, name in AGE_BANDS], dtype=object)
    return names[np.searchsorted(edges, age, side="right") - 1]


def _feature_matrix(names: list[str], n: int, families) -> pd.DataFrame:
    """The features as one float block, filled family by family so that no second copy of the matrix
    is ever held (each family's columns are released once copied in)."""
    matrix = np.empty((n, len(names)), order="F")
    column = {name: j for j, name in enumerate(names)}
    filled = 0
    for family in families:
        for name, values in family().items():
            matrix[:, column[name]] = values
            filled += 1
    if filled != len(names):
        raise RuntimeError(f"the snapshot built {filled} feature columns for a catalogue of {len(names)}")
    return pd.DataFrame(matrix, columns=names, copy=False)


def build_snapshot(d: PreparedData, as_of: date, config: SnapshotConfig) -> pd.DataFrame:
    """One row per cohort member at `as_of`: ids, features (catalogue order), label, protected columns."""
    t = int(np.datetime64(as_of, "D").astype(np.int64))
    in_lookback = np.flatnonzero((d.inc_day < t) & (d.inc_day >= t - config.lookback_days))
    cohort = np.unique(d.inc_person[in_lookback])
    n = len(cohort)
    pos = np.searchsorted(cohort, d.inc_person[in_lookback])
    cohort_area = d.person_area[cohort]
    age = (t - d.birth_day[cohort]) / 365.25
    names = [s.name for s in d.catalogue(config)]
    families = [
        lambda: _incident_features(d, in_lookback, pos, n, t, config),
        lambda: _intervention_features(d, cohort, t),
        lambda: {AGE: age},
        lambda: _area_features(d, t, cohort_area),
        lambda: _history_features(d, *_history_rows(d, cohort, t), n, t),
    ]
    if d.household is not None:
        families += [lambda: _household_makeup(d, cohort, t),
                     lambda: _household_involvements(d, cohort, in_lookback, pos, t, config)]
    features = _feature_matrix(names, n, families)
    ids = pd.DataFrame({
        "person_id": d.person_id.take(cohort).astype("string"),
        "as_of": pd.Series(np.full(n, np.datetime64(as_of, "D")).astype("datetime64[s]")),
        "area_id": pd.array(d.area_id[cohort_area], dtype="string"),
        "local_authority": pd.array(d.la_names[d.area_la[cohort_area]], dtype="string"),
    })
    frame = pd.concat([ids, features, pd.DataFrame({"label": _labels(d, cohort, t, config)})], axis=1)
    protected = {"sex": d.sex.take(cohort), "ethnicity": d.ethnicity.take(cohort), "age_band": _age_band(age),
                 "deprivation_quintile": (d.area_decile[cohort_area] + 1) // 2}
    if d.disability is not None:
        protected["disability"] = d.disability.take(cohort)
    for name in snapshot_protected(config, disability=d.disability is not None):
        values = protected[name]
        frame[name] = pd.array(values.astype(str) if values.dtype != object else values, dtype="string")
    return frame


def snapshot_protected(config: SnapshotConfig, disability: bool) -> tuple[str, ...]:
    """The protected columns a snapshot carries, in the config's order: those of `SNAPSHOT_PROTECTED` it asks
    for, disability only where the data has it (`disability`)."""
    return tuple(name for name in config.protected
                 if name in SNAPSHOT_PROTECTED and (disability or name != "disability"))


@dataclass(frozen=True)
class SnapshotMeta:
    """What a snapshot file is: travels in the Parquet schema metadata under b'riskloop'."""

    features: tuple[str, ...]
    protected: tuple[str, ...]
    ids: tuple[str, ...]
    label: str
    horizon_days: int
    harm_threshold: float
    as_of: tuple[str, ...]
    data_fingerprint: str
    unlabelled_rows: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SnapshotMeta":
        payload = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload.items()})


def build_snapshots(d: PreparedData, as_of_dates: list[date], config: SnapshotConfig) -> tuple[pd.DataFrame, SnapshotMeta]:
    """Snapshots for several as-of dates, stacked and sorted by (as_of, person_id)."""
    frames = [build_snapshot(d, t, config) for t in sorted(set(as_of_dates))]
    frame = pd.concat(frames, ignore_index=True)
    names = tuple(s.name for s in d.catalogue(config))
    protected = tuple(c for c in config.protected if c in frame.columns)
    meta = SnapshotMeta(features=names, protected=protected, ids=ID_COLUMNS, label=config.label,
                        horizon_days=config.horizon_days, harm_threshold=config.harm_threshold,
                        as_of=tuple(t.isoformat() for t in sorted(set(as_of_dates))),
                        data_fingerprint=d.fingerprint, unlabelled_rows=int(frame["label"].isna().sum()))
    return frame, meta


def write_snapshot_file(frame: pd.DataFrame, meta: SnapshotMeta, path) -> None:
    """Parquet with the snapshot's metadata (features, protected non-features, label, lineage)."""
    from riskloop.features.io import write_parquet_atomic

    write_parquet_atomic(frame, path, metadata={"riskloop": meta.to_json()})


def read_snapshot_file(path) -> tuple[pd.DataFrame, SnapshotMeta]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"riskloop")
    if raw is None:
        raise ValueError(f"{path}: not a riskloop snapshot (no riskloop metadata)")
    return table.to_pandas(), SnapshotMeta.from_json(raw.decode())
