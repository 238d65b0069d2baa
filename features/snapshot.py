"""As-of snapshots: the cohort at T, point-in-time features, the label, and protected columns.

Only records dated strictly before T feed a feature; the label looks at (T, T + horizon]. A record
dated exactly T is in neither (docs/architecture.md, "The as-of rule"). All aggregation is vectorised numpy
(`bincount` over cohort positions), measured faster than DuckDB here (benchmarks/features.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

from riskloop.features.catalogue import DEFAULT_WINDOWS, FeatureSpec, build_catalogue
from riskloop.features.families import Cohort, FeatureFamily, Layout, families_of
from riskloop.features.families.area import count_by_area  # noqa: F401  (serving.spark reads it from here)
from riskloop.features.families.base import OFFENDING, VICTIM, high_harm
from riskloop.features.keys import key_positions
from riskloop.features.validate import Dataset
from riskloop.features.vocabulary import ATTENTION, INCIDENT_TYPES, ROLES

LabelName = Literal["escalation", "repeat_victimisation"]
#: The incidents a snapshot is built from: all, or only those reported to the police (`incidents.attention`),
#: so that what attention finds proactively feeds neither features nor labels (Ensign et al. 2018's remedy).
IncidentSource = Literal["all", "reported"]
INCIDENT_SOURCES: tuple[str, ...] = ("all", "reported")
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
    incidents: IncidentSource = "all"

    def __post_init__(self) -> None:
        if self.label not in ("escalation", "repeat_victimisation"):
            raise ValueError(f"unknown label '{self.label}' (escalation or repeat_victimisation)")
        if self.incidents not in INCIDENT_SOURCES:
            raise ValueError(f"incidents: expected one of {', '.join(INCIDENT_SOURCES)}, got '{self.incidents}'")
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


def first_record(d: PreparedData) -> date | None:
    """The day of the data's first incident (None without incidents)."""
    return np.datetime64(int(d.inc_day.min()), "D").item() if len(d.inc_day) else None


def short_history(d: PreparedData, as_of_dates: list[date], lookback_days: int) -> list[date]:
    """`looks_before` the data's first record."""
    return looks_before(first_record(d), as_of_dates, lookback_days)


def looks_before(first: date | None, as_of_dates: list[date], lookback_days: int) -> list[date]:
    """The as-of dates whose lookback reaches before `first`, the data's first record (the data-start rule,
    docs/architecture.md): their features see a shorter past than the lookback, so their counts are lower
    bounds and a cohort then differs from a later one by the extract's age, not by its people."""
    if first is None:
        return []
    return [t for t in sorted(as_of_dates) if _day(t) - lookback_days < _day(first)]


def _day(t: date) -> int:
    return int(np.datetime64(t, "D").astype(np.int64))


def _days(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[D]").astype(np.int64)


@dataclass
class PreparedData:
    """A validated data set as integer-coded numpy arrays, built once and reused for every T."""

    person_id: pd.api.extensions.ExtensionArray  # Arrow strings: compact for millions of pseudonyms
    person_area: np.ndarray
    birth_day: np.ndarray
    sex: pd.Categorical
    ethnicity: pd.Categorical
    disability: pd.Categorical | None
    household: np.ndarray | None  # household code per person (one of their own if blank); None without household_id
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
    # How each incident came to attention: its code in `ATTENTION` (-1: blank); None without the column.
    inc_attention: np.ndarray | None = None

    @classmethod
    def from_dataset(
        cls,
        data: Dataset,
        programmes: tuple[str, ...] | None = None,
        others: pd.DataFrame | None = None,
        area_counts: dict[int, np.ndarray] | None = None,
    ) -> PreparedData:
        """Arrays of a data set. A partition of people passes the whole data set's `programmes`, the
        `others` (incident_id, person_id, date) sharing its incidents, and `area_counts` by as-of day."""
        people = data.people  # by person_id: a person's code is their place in that order
        if not people["person_id"].is_monotonic_increasing:  # a written data set usually is: no sort then
            people = people.sort_values("person_id", kind="stable")
        people = people.reset_index(drop=True)
        areas = data.areas.reset_index(drop=True)
        la_codes, la_names = pd.factorize(areas["local_authority"], sort=True)
        rank = areas["deprivation_rank"].to_numpy(dtype=float)
        decile = np.ceil(10 * pd.Series(rank).rank(method="first").to_numpy() / len(rank)).astype(np.int64)
        inc = data.incidents
        iv = data.interventions
        programmes = tuple(sorted(iv["programme"].unique())) if programmes is None else programmes
        # none: typed as the incidents, so that the incident ids below factorize as Arrow strings, not objects
        others = inc.iloc[:0] if others is None else others
        # the people's keys hashed once, for their incidents and their interventions
        person = key_positions(pd.concat([inc["person_id"], iv["person_id"]], ignore_index=True), people["person_id"])
        incident_codes = pd.factorize(pd.concat([inc["incident_id"], others["incident_id"]], ignore_index=True))[0]
        end = iv["end_date"] if "end_date" in iv else pd.Series(pd.NaT, index=iv.index)
        completed = iv["completed"] if "completed" in iv else pd.Series(pd.NA, index=iv.index, dtype="boolean")
        far_future = np.iinfo(np.int64).max // 2
        return cls(
            person_id=people["person_id"].astype("string[pyarrow]").array,
            person_area=key_positions(people["area_id"], areas["area_id"]),
            birth_day=_days(people["birth_date"]),
            sex=pd.Categorical(people["sex"]),
            ethnicity=pd.Categorical(people["ethnicity"]),
            disability=pd.Categorical(people["disability"].fillna("U")) if "disability" in people else None,
            household=_household_codes(people["household_id"]) if "household_id" in people else None,
            area_id=areas["area_id"].to_numpy(dtype=object),
            area_la=la_codes.astype(np.int64),
            la_names=np.asarray(la_names, dtype=object),
            area_population=areas["population"].to_numpy(dtype=float),
            area_decile=decile,
            inc_person=person[: len(inc)],
            inc_incident=incident_codes[: len(inc)].astype(np.int64),
            inc_day=_days(inc["date"]),
            inc_type=key_positions(inc["type"], INCIDENT_TYPES),
            inc_role=key_positions(inc["role"], ROLES),
            inc_harm=inc["harm"].to_numpy(dtype=float),
            iv_person=person[len(inc) :],
            iv_programme=key_positions(iv["programme"], programmes),
            iv_start=_days(iv["start_date"]),
            iv_end=np.where(end.isna(), far_future, end.to_numpy(dtype="datetime64[D]").astype(np.int64)),
            iv_completed=completed.fillna(False).to_numpy(dtype=bool),
            programmes=programmes,
            end_day=int(np.datetime64(data.end, "D").astype(np.int64)),
            fingerprint=data.fingerprint,
            other_incident=incident_codes[len(inc) :].astype(np.int64),
            other_person=len(people) + pd.factorize(others["person_id"])[0].astype(np.int64),
            other_day=_days(others["date"]) if len(others) else np.empty(0, np.int64),
            area_counts=area_counts or {},
            inc_attention=key_positions(inc["attention"], ATTENTION) if "attention" in inc else None,
        )

    def layout(self, config: SnapshotConfig) -> Layout:
        return Layout(self.programmes, config.windows, self.household is not None)

    def catalogue(self, config: SnapshotConfig) -> list[FeatureSpec]:
        layout = self.layout(config)
        return build_catalogue(layout.programmes, layout.windows, households=layout.households)


#: The incident arrays of `PreparedData`, row for row.
INCIDENT_ARRAYS = ("inc_person", "inc_incident", "inc_day", "inc_type", "inc_role", "inc_harm", "inc_attention")


def incidents_from(d: PreparedData, incidents: IncidentSource) -> PreparedData:
    """The prepared data with only the incidents snapshots are built from (`SnapshotConfig.incidents`): all,
    or the reported ones, refused in one line when the data does not say how every incident came to attention."""
    if incidents == "all":
        return d
    if d.inc_attention is None:
        raise ValueError(
            "incidents: reported needs the incidents table's optional 'attention' column, and this data has none"
        )
    unknown = int((d.inc_attention < 0).sum())
    if unknown:
        raise ValueError(f"incidents: reported needs every incident's attention, and {unknown:,} are blank (unknown)")
    keep = d.inc_attention == ATTENTION.index("reported")
    return replace(d, **{name: getattr(d, name)[keep] for name in INCIDENT_ARRAYS})


def _household_codes(household_id: pd.Series) -> np.ndarray:
    """One integer per household; a person with no household_id is a household of their own."""
    codes, uniques = pd.factorize(household_id)
    blank = np.flatnonzero(codes < 0)
    codes[blank] = len(uniques) + np.arange(len(blank))
    return codes.astype(np.int64)


def _horizon_rows(d: PreparedData, t: int, config: SnapshotConfig) -> np.ndarray | None:
    """The incident rows in the label's horizon (t, t + horizon], or None when it reaches past the data's end."""
    if t + config.horizon_days > d.end_day:
        return None
    return np.flatnonzero((d.inc_day > t) & (d.inc_day <= t + config.horizon_days))


def _labels(d: PreparedData, cohort: np.ndarray, t: int, config: SnapshotConfig) -> np.ndarray:
    """1/0 per cohort member, or NaN when the horizon reaches past the data's end."""
    rows = _horizon_rows(d, t, config)
    if rows is None:
        return np.full(len(cohort), np.nan)
    return np.isin(cohort, d.inc_person[rows[label_event(d, rows, config)]]).astype(float)


def horizon_harm(d: PreparedData, people: np.ndarray, as_of: date, config: SnapshotConfig) -> np.ndarray:
    """Per person (codes in `d`): the recorded harm over the label's horizon after `as_of`, the `harm` of every
    incident there in which they have the label's role (not only the high-harm ones the label counts), each
    incident once per person (its largest harm where they hold two such roles in it), from the incidents
    `config.incidents` names; NaN where the label is (the horizon reaches past the data's end)."""
    d = incidents_from(d, config.incidents)
    rows = _horizon_rows(d, _day(as_of), config)
    if rows is None:
        return np.full(len(people), np.nan)
    rows = rows[label_role(d, rows, config)]
    person, incident, harm = d.inc_person[rows], d.inc_incident[rows], d.inc_harm[rows]
    order = np.lexsort((-harm, incident, person))  # each (person, incident)'s largest harm first
    first = np.ones(len(order), bool)
    first[1:] = (np.diff(person[order]) != 0) | (np.diff(incident[order]) != 0)
    once = order[first]
    return np.bincount(person[once], weights=harm[once], minlength=len(d.person_id))[people]


def label_role(d: PreparedData, rows: np.ndarray, config: SnapshotConfig) -> np.ndarray:
    """Per incident row: has the person the label's role in it (offending for escalation, victim for repeat
    victimisation)?"""
    role = d.inc_role[rows]
    return OFFENDING[role] if config.label == "escalation" else role == VICTIM


def label_event(d: PreparedData, rows: np.ndarray, config: SnapshotConfig) -> np.ndarray:
    """Per incident row: is it the label's event (high-harm offending, or high-harm victimisation)?"""
    return label_role(d, rows, config) & high_harm(d, rows, config.harm_threshold)


def _age_band(age: np.ndarray) -> np.ndarray:
    edges = np.array([lo for lo, _ in AGE_BANDS])
    names = np.array([name for _, name in AGE_BANDS], dtype=object)
    return names[np.searchsorted(edges, age, side="right") - 1]


def _feature_matrix(families: list[FeatureFamily], layout: Layout, cohort: Cohort) -> pd.DataFrame:
    """The features as one float block, filled column by column as the families compute them, so that no
    second copy of the matrix is ever held (the block's pages are taken as they are written, and each
    computed column is released once copied in). A family must give exactly its declared columns, in order."""
    names = [[s.name for s in family.specs(layout)] for family in families]
    matrix = np.empty((cohort.n, sum(map(len, names))), order="F")
    j = 0
    for family, declared in zip(families, names):
        computed = []
        for name, values in family.compute(cohort):
            computed.append(name)
            if computed != declared[: len(computed)]:
                break
            matrix[:, j] = values
            j += 1
        if computed != declared:
            raise RuntimeError(f"{type(family).__name__} computed {computed}, declared {declared}")
    return pd.DataFrame(matrix, columns=[name for declared in names for name in declared], copy=False)


def cohort_at(d: PreparedData, as_of: date, config: SnapshotConfig) -> Cohort:
    """Everyone with an incident in the lookback before `as_of`, and those incident rows."""
    t = int(np.datetime64(as_of, "D").astype(np.int64))
    in_lookback = np.flatnonzero((d.inc_day < t) & (d.inc_day >= t - config.lookback_days))
    people = np.unique(d.inc_person[in_lookback])
    return Cohort(d, t, config, people, in_lookback, np.searchsorted(people, d.inc_person[in_lookback]))


def build_snapshot(d: PreparedData, as_of: date, config: SnapshotConfig) -> pd.DataFrame:
    """One row per cohort member at `as_of`: ids, features (catalogue order), label, protected columns, all
    from the incidents `config.incidents` names."""
    d = incidents_from(d, config.incidents)
    cohort = cohort_at(d, as_of, config)
    t, people = cohort.t, cohort.people
    layout = d.layout(config)
    features = _feature_matrix(families_of(layout), layout, cohort)
    n, cohort_area, age = cohort.n, cohort.area, cohort.age
    ids = pd.DataFrame(
        {
            "person_id": d.person_id.take(people).astype("string"),
            "as_of": pd.Series(np.full(n, np.datetime64(as_of, "D")).astype("datetime64[s]")),
            "area_id": pd.array(d.area_id[cohort_area], dtype="string"),
            "local_authority": pd.array(d.la_names[d.area_la[cohort_area]], dtype="string"),
        }
    )
    frame = pd.concat([ids, features, pd.DataFrame({"label": _labels(d, people, t, config)})], axis=1)
    protected = {
        "sex": d.sex.take(people),
        "ethnicity": d.ethnicity.take(people),
        "age_band": _age_band(age),
        "deprivation_quintile": (d.area_decile[cohort_area] + 1) // 2,
    }
    if d.disability is not None:
        protected["disability"] = d.disability.take(people)
    for name in snapshot_protected(config, disability=d.disability is not None):
        values = protected[name]
        frame[name] = pd.array(values.astype(str) if values.dtype != object else values, dtype="string")
    return frame


def snapshot_protected(config: SnapshotConfig, disability: bool) -> tuple[str, ...]:
    """The protected columns a snapshot carries, in the config's order: those of `SNAPSHOT_PROTECTED` it asks
    for, disability only where the data has it (`disability`)."""
    return tuple(
        name for name in config.protected if name in SNAPSHOT_PROTECTED and (disability or name != "disability")
    )


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
    def from_json(cls, text: str) -> SnapshotMeta:
        payload = json.loads(text)
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in payload.items()}
        return cls(**fields)


def build_snapshots(
    d: PreparedData,
    as_of_dates: list[date],
    config: SnapshotConfig,
    select: Callable[[pd.DataFrame], pd.DataFrame] = lambda snapshot: snapshot,
) -> tuple[pd.DataFrame, SnapshotMeta]:
    """Snapshots for several as-of dates, stacked and sorted by (as_of, person_id). `select` picks each date's
    rows as soon as it is built (its features are the whole cohort's), so only the kept rows are ever stacked."""
    frames = [select(build_snapshot(d, t, config)) for t in sorted(set(as_of_dates))]
    frame = pd.concat(frames, ignore_index=True)
    names = tuple(s.name for s in d.catalogue(config))
    protected = tuple(c for c in config.protected if c in frame.columns)
    meta = SnapshotMeta(
        features=names,
        protected=protected,
        ids=ID_COLUMNS,
        label=config.label,
        horizon_days=config.horizon_days,
        harm_threshold=config.harm_threshold,
        as_of=tuple(t.isoformat() for t in sorted(set(as_of_dates))),
        data_fingerprint=d.fingerprint,
        unlabelled_rows=int(frame["label"].isna().sum()),
    )
    return frame, meta
