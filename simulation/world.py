"""Generate the synthetic Wales-like world and write it in the data contract, truth apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from riskloop.artifacts.dataset import Coverage, write_dataset
from riskloop.features.io import write_parquet_atomic, write_text_atomic
from riskloop.features.vocabulary import ATTENTION, INCIDENT_TYPES, ROLES
from riskloop.simulation.demography import step_demography
from riskloop.simulation.dynamics import (
    PROACTIVE,
    PROGRAMME_DURATION,
    ROLE_CODE,
    Events,
    Interventions,
    State,
    days_in_month,
    eligible,
    simulate_month,
    start_programme,
    warm_up,
)
from riskloop.simulation.parameters import PROGRAMME_TIER, PROGRAMMES, WorldConfig
from riskloop.simulation.population import ETHNICITY_NAMES, Areas, Population, build_areas, build_population
from riskloop.simulation.streams import Streams

ROLE_NAMES = tuple(sorted(ROLE_CODE, key=ROLE_CODE.__getitem__))
assert set(ROLE_NAMES) == set(ROLES)


@dataclass(frozen=True)
class Enrolment:
    """People the partnership places on `programme` this month (indexes into the population)."""

    person: np.ndarray
    programme: str


@dataclass(frozen=True)
class Surveillance:
    """Being listed: these people are under `factor` times the attention in every month before
    `until_month`, so their offences that the police find proactively (`PROACTIVE_TYPES`: drugs, public
    order) are recorded more often (`dynamics.recording_probability`); reported offences and true
    incidents are unchanged."""

    person: np.ndarray
    factor: float
    until_month: int


EnrolPolicy = Callable[["Simulation", int], "Enrolment | Sequence[Enrolment] | None"]


@dataclass
class Simulation:
    """A world run up to (not including) month `months`; `config.end` is its last day."""

    config: WorldConfig
    areas: Areas
    people: Population
    state: State
    events: Events
    interventions: Interventions
    months: int
    next_incident: int = 1

    @property
    def end(self) -> np.datetime64:
        """The last day simulated so far."""
        starts = month_starts(self.config, self.months + 1)
        return min(starts[self.months] - np.timedelta64(1, "D"), np.datetime64(self.config.end, "D"))

    def streams(self, month: int) -> Streams:
        return Streams((self.config.seed,), month)


def month_starts(config: WorldConfig, months: int | None = None) -> np.ndarray:
    """First day of each month of the world (the first is its start); `months` may run past its end."""
    first = np.datetime64(config.start, "M")
    count = int(np.datetime64(config.end, "M") - first) + 1 if months is None else months
    starts = np.arange(first, first + count).astype("datetime64[D]")
    starts[0] = np.datetime64(config.start, "D")
    return starts


def _run(sim: Simulation, stop: int, enrol: EnrolPolicy | None, progress: Callable[[int, int], None] | None) -> None:
    """Simulate months `sim.months` .. `stop - 1`: demography, the partnership's enrolments, incidents."""
    starts = month_starts(sim.config, stop)
    last_day = np.datetime64(sim.config.end, "D")
    first = sim.months
    for month in range(first, stop):
        streams = sim.streams(month)
        span = days_in_month(starts[month], last_day)
        if month > 0:
            step_demography(sim.config, sim.areas, sim.people, sim.state, starts[month], streams)
        for enrolment in _as_list(enrol(sim, month) if enrol else None):
            people = eligible(
                sim.people, sim.state, np.asarray(enrolment.person, dtype=np.int64), enrolment.programme, month
            )
            start_programme(
                sim.people,
                sim.state,
                people,
                enrolment.programme,
                month,
                starts[month],
                span,
                streams,
                sim.interventions,
            )
        sim.next_incident = simulate_month(
            sim.people,
            sim.areas,
            sim.state,
            month,
            starts[month],
            last_day,
            sim.config.dynamics,
            streams,
            sim.next_incident,
            sim.events,
            sim.interventions,
        )
        sim.months = month + 1
        if progress:
            progress(month + 1 - first, stop - first)


def _as_list(item):
    """None, one Enrolment/Surveillance or a sequence of them, as a sequence."""
    if item is None:
        return []
    return [item] if isinstance(item, (Enrolment, Surveillance)) else item


def simulate(
    config: WorldConfig, until_month: int | None = None, progress: Callable[[int, int], None] | None = None
) -> Simulation:
    """Run the world month by month from its start; stop before `until_month` if given.

    Deterministic: the same config (seed included) gives the same population, state and events.
    """
    rng = np.random.default_rng(config.seed)
    areas = build_areas(config, rng)
    people = build_population(config, areas, rng)
    state = State.initial(len(people), config.dynamics, rng)
    warm_up(people, state, np.datetime64(config.start, "D"), config.dynamics, config.seed)
    sim = Simulation(config, areas, people, state, Events(), Interventions(), 0)
    total = len(month_starts(config))
    _run(sim, total if until_month is None else min(until_month, total), None, progress)
    return sim


def extend(
    sim: Simulation,
    months: int,
    enrol: EnrolPolicy | None = None,
    surveillance: Surveillance | Sequence[Surveillance] | None = None,
) -> None:
    """Run `months` more whole months past the world's end, in place; `config.end` moves on.

    The world's own referrals keep running. `enrol(sim, month)`, called at the start of each month,
    may place people on programmes (they start next month, as referrals do; people already in an
    effect window of that programme, the dead and those who left are skipped). `surveillance`
    raises the recording of the listed people's proactively found offending. Without either, extending a world by
    k months gives exactly the world generated with an end k months later.
    """
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    end = np.datetime64(sim.config.end, "D")
    if sim.months < len(month_starts(sim.config)) or (end + 1).astype("datetime64[M]") == end.astype("datetime64[M]"):
        raise ValueError(f"only a world run to its end on a month's last day can be extended (end {sim.config.end})")
    for watch in _as_list(surveillance):
        person = np.asarray(watch.person, dtype=np.int64)
        sim.state.surveillance_factor[person] = watch.factor
        sim.state.surveillance_until[person] = watch.until_month
    stop = sim.months + months
    new_end = month_starts(sim.config, stop + 1)[stop] - np.timedelta64(1, "D")
    sim.config = replace(sim.config, end=new_end.astype(date))
    _run(sim, stop, enrol, None)


def _areas_table(sim: Simulation) -> pa.Table:
    a = sim.areas
    return pa.table(
        {
            "area_id": pa.array(a.area_id, pa.string()),
            "local_authority": pa.array(a.local_authority, pa.string()),
            "population": pa.array(np.bincount(sim.people.area[sim.people.present], minlength=len(a)), pa.int64()),
            "deprivation_rank": pa.array(a.deprivation_rank, pa.int64()),
        }
    )


def _people_table(sim: Simulation, ids: np.ndarray) -> pa.Table:
    p = sim.people
    return pa.table(
        {
            "person_id": pa.array(ids, pa.string()),
            "area_id": pa.array(sim.areas.area_id[p.area], pa.string()),
            "birth_date": pa.array(p.birth_day, pa.date32()),
            "sex": pa.array(np.where(p.male, "M", "F"), pa.string()),
            "ethnicity": pa.array(np.array(ETHNICITY_NAMES, dtype=object)[p.ethnicity], pa.string()),
            "disability": pa.array(np.where(p.disability, "Y", "N"), pa.string()),
            "household_id": pa.array(np.char.add("H", p.household.astype(str)), pa.string()),
        }
    )


def _incident_tables(sim: Simulation, ids: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """(recorded incidents in the contract, all true incidents for truth/)."""
    e = sim.events.concatenated()
    order = np.lexsort((e["role"], e["incident"]))
    e = {k: v[order] for k, v in e.items()}
    type_names = np.array(INCIDENT_TYPES, dtype=object)
    role_names = np.array(ROLE_NAMES, dtype=object)
    columns = {
        "incident_id": pa.array(e["incident"], pa.int64()),
        "person_id": pa.array(ids[e["person"]], pa.string()),
        "date": pa.array(e["day"], pa.date32()),
        "type": pa.array(type_names[e["type"]], pa.string()),
        "role": pa.array(role_names[e["role"]], pa.string()),
        "harm": pa.array(np.round(e["harm"], 4), pa.float64()),
        "attention": pa.array(np.where(PROACTIVE[e["type"]], ATTENTION[1], ATTENTION[0]), pa.string()),
    }
    truth = pa.table({**columns, "recorded": pa.array(e["recorded"], pa.bool_())})
    return truth.filter(truth["recorded"]).drop(["recorded"]), truth


def _interventions_table(sim: Simulation, ids: np.ndarray) -> pa.Table:
    iv = sim.interventions
    if not iv.person:
        person = np.empty(0, np.int64)
        programme, start, completed = np.empty(0, object), np.empty(0, "datetime64[D]"), np.empty(0, bool)
    else:
        person = np.concatenate(iv.person)
        programme = np.concatenate(iv.programme)
        start = np.concatenate(iv.start_day)
        completed = np.concatenate(iv.completed)
    end_of_data = sim.end
    started = start <= end_of_data
    person, programme, start, completed = person[started], programme[started], start[started], completed[started]
    duration = np.array([PROGRAMME_DURATION[p] for p in programme], dtype="timedelta64[D]")
    end = start + duration
    finished = end <= end_of_data
    order = np.lexsort((person, start))
    n = len(order)
    return pa.table(
        {
            "intervention_id": pa.array(np.arange(1, n + 1), pa.int64()),
            "person_id": pa.array(ids[person[order]], pa.string()),
            "programme": pa.array(programme[order], pa.string()),
            "start_date": pa.array(start[order], pa.date32()),
            "tier": pa.array([PROGRAMME_TIER[p] for p in programme[order]], pa.string()),
            "end_date": pa.array(end[order], pa.date32(), mask=~finished[order]),
            "completed": pa.array(completed[order], pa.bool_(), mask=~finished[order]),
        }
    )


def _truth_people(sim: Simulation, ids: np.ndarray) -> pa.Table:
    p = sim.people
    partner = np.where(p.partner >= 0, ids[np.maximum(p.partner, 0)], None)
    return pa.table(
        {
            "person_id": pa.array(ids, pa.string()),
            "arrived_date": pa.array(p.arrived_day, pa.date32()),
            "died_date": pa.array(p.died_day, pa.date32()),
            "left_date": pa.array(p.left_day, pa.date32()),
            "ace_count": pa.array(p.ace, pa.int64()),
            "partner_id": pa.array(partner, pa.string()),
            "recording_factor": pa.array(p.recording_factor, pa.float64()),
            "offending_trait": pa.array(p.offending_trait, pa.float64()),
            "domestic_trait": pa.array(p.domestic_trait, pa.float64()),
            "victim_trait": pa.array(p.victim_trait, pa.float64()),
        }
    )


def _truth_effects(sim: Simulation, ids: np.ndarray) -> pa.Table:
    p = sim.people
    n = len(p)
    return pa.table(
        {
            "person_id": pa.array(np.tile(ids, len(PROGRAMMES)), pa.string()),
            "programme": pa.array(np.repeat(np.array(PROGRAMMES, dtype=object), n), pa.string()),
            "effect": pa.array(np.concatenate([p.effect[k] for k in PROGRAMMES]), pa.float64()),
            "completion_probability": pa.array(np.concatenate([p.completion[k] for k in PROGRAMMES]), pa.float64()),
        }
    )


def write_world(sim: Simulation, out: Path) -> dict[str, int]:
    """Write the contract tables (Parquet) to `out` and the truth to `out/truth/`; return row counts."""
    out = Path(out)
    ids = sim.people.person_id
    recorded, true_incidents = _incident_tables(sim, ids)
    tables = {
        "areas": _areas_table(sim),
        "people": _people_table(sim, ids),
        "incidents": recorded,
        "interventions": _interventions_table(sim, ids),
    }
    counts = write_dataset(
        out,
        tables,
        Coverage(
            end=date.fromisoformat(str(sim.end)),
            start=sim.config.start,
            kind="riskloop synthetic world",
            seed=sim.config.seed,
        ),
    )
    write_parquet_atomic(true_incidents, out / "truth" / "incidents.parquet")
    write_parquet_atomic(_truth_people(sim, ids), out / "truth" / "people.parquet")
    write_parquet_atomic(_truth_effects(sim, ids), out / "truth" / "effects.parquet")
    write_text_atomic(sim.config.to_json(), out / "truth" / "world.json")
    return counts
