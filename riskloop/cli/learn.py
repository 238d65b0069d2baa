"""`riskloop learn | simulate`: the learning loop on real outcomes, and in the synthetic world."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from riskloop.cli._console import DATE, EXPECTED, fatal, out, progress
from riskloop.jobs.common import default_config
from riskloop.learning.linkage import TREATMENT_WINDOW_DAYS
from riskloop.simulation.parameters import PROGRAMMES
from riskloop.studies.settings import LoopSettings

if TYPE_CHECKING:
    from riskloop.jobs.learn import Learned

#: The largest surveillance effect or effect scale the command takes (a finite bound: `inf` is refused).
MAX_FACTOR = 1000.0


class Programme(str, Enum):
    """The synthetic world's programmes (`simulation.parameters.PROGRAMMES`)."""

    iris = "iris"
    drive = "drive"
    youth_early_action = "youth_early_action"
    diversion = "diversion"


assert tuple(p.value for p in Programme) == PROGRAMMES


class Retrain(str, Enum):
    treatment_aware = "treatment-aware"
    naive = "naive"


class EffectModifier(str, Enum):
    """What the synthetic world's programme effects vary with (`simulation.parameters.Dynamics`)."""

    aces = "aces"
    deprivation = "deprivation"


class Incidents(str, Enum):
    all = "all"
    reported = "reported"


class Policy(str, Enum):
    none = "none"
    random = "random"
    risk = "risk"
    uplift = "uplift"


def print_learning(learned: Learned) -> None:
    result = learned.result
    summary = Table(title=f"what worked: people scored at {result.as_of}, escalation within {result.horizon_days} days")
    for col in ("programme", "started", "naive (points)", "doubly robust (points, 95% CI)"):
        summary.add_column(col, justify="left" if col == "programme" else "right")
    for p in result.programmes:
        o = p.overall
        if o is None:
            summary.add_row(p.programme, str(p.n_treated), "-", "too few to estimate")
            continue
        summary.add_row(
            p.programme,
            f"{p.n_treated:,}",
            f"{o['naive'] * 100:+.1f}",
            f"{o['dr'] * 100:+.1f} ({o['dr_ci_low'] * 100:+.1f} to {o['dr_ci_high'] * 100:+.1f})",
        )
    out.print(summary)
    verdict = (
        "promoted to champion"
        if result.promoted
        else "not promoted: " + ("; ".join(result.promotion_reasons) or "promotion not asked for")
    )
    assert result.challenger is not None  # a learning cycle always registers its challenger
    out.print(f"{result.retrain} challenger v{result.challenger.model_version}: {verdict}")
    out.print(f"learning report {learned.report}; outcomes, effects, drift in {learned.report.parent}/")


def learn(
    champion: Annotated[
        str, typer.Option(help="the model whose lists are being learned from")
    ] = "models:/riskloop-escalation@champion",
    data: Annotated[Path, typer.Option(help="the data set, now reaching past T + horizon")] = Path(
        "riskloop-demo/data"
    ),
    config: Annotated[Path, typer.Option(help="experiment config for the retrain")] = default_config(),
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=DATE,
            help="T, the date the lists were scored "
            "at (default: from --scores, else the latest date whose outcomes "
            "are known)",
        ),
    ] = None,
    scores: Annotated[
        Path | None, typer.Option(help="the `riskloop score` folder of T, lists filled in by the teams")
    ] = None,
    retrain: Annotated[Retrain, typer.Option(help="how the challenger is retrained")] = Retrain.treatment_aware,
    retune: Annotated[
        bool,
        typer.Option(
            help="search the config's grid again (default: the challenger refits the champion's model group, "
            "so the two differ by their data alone)"
        ),
    ] = False,
    promote_challenger: Annotated[
        bool, typer.Option("--promote/--no-promote", help="promote through the gates")
    ] = True,
    window: Annotated[
        int, typer.Option(help="days after T in which a programme start counts as treatment")
    ] = TREATMENT_WINDOW_DAYS,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("riskloop-learning"),
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int | None, typer.Option(help="LightGBM threads (default: all cores)")] = None,
) -> None:
    """One learning cycle: outcomes -> what worked for whom -> treatment-aware challenger -> gates -> report."""
    from riskloop.jobs import learn as jobs

    job = jobs.LearnJob(
        champion,
        data,
        config,
        out_dir,
        as_of.date() if as_of else None,
        scores,
        retrain.value,
        promote_challenger,
        window,
        seed,
        threads,
        retune=retune,
    )
    try:
        with progress("learning cycle") as report:
            learned = jobs.learn(job, report)
    except EXPECTED as exc:
        fatal(str(exc))
    print_learning(learned)


def simulate(
    people: Annotated[int, typer.Option(min=1000, help="size of the synthetic world")] = LoopSettings.people,
    seed: Annotated[int, typer.Option()] = LoopSettings.seed,
    cycles: Annotated[int, typer.Option(min=1, help="yearly cycles after a 5-year burn-in")] = LoopSettings.cycles,
    capacity: Annotated[int, typer.Option(min=0, help="places on the programme per cycle")] = LoopSettings.capacity,
    policy: Annotated[Policy, typer.Option(help="how the places are filled")] = Policy.risk,
    retrain: Annotated[Retrain, typer.Option(help="how the model is retrained each cycle")] = Retrain.treatment_aware,
    surveillance_effect: Annotated[
        float,
        typer.Option(
            min=1.0, max=MAX_FACTOR, help="attention on the listed: their proactive offences found more (1 = none)"
        ),
    ] = LoopSettings.surveillance_effect,
    programme: Annotated[Programme, typer.Option(help="the programme the places are on")] = Programme.drive,
    effect_scale: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=MAX_FACTOR,
            help="the world's programmes work this many times as well (each true effect at most 0.95)",
        ),
    ] = LoopSettings.effect_scale,
    effect_modifier: Annotated[
        EffectModifier,
        typer.Option(
            help="what the programmes' effects vary with: unrecorded adverse childhood experiences (the default "
            "world) or recorded area deprivation (a variant where uplift targeting can see who benefits)"
        ),
    ] = EffectModifier.aces,
    incidents: Annotated[
        Incidents,
        typer.Option(help="train on every recorded incident, or on the reported only (not those found by attention)"),
    ] = Incidents.all,
    threads: Annotated[int | None, typer.Option(help="LightGBM threads (default: all cores)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("riskloop-simulate"),
) -> None:
    """Closed-loop simulation: score, fill places by a policy, let the world run a year, learn, retrain."""
    from riskloop.jobs.simulate import simulate as run_simulation

    try:
        settings = LoopSettings(
            people,
            seed,
            cycles,
            capacity,
            policy.value,
            retrain.value,
            surveillance_effect,
            programme.value,
            threads,
            effect_scale,
            effect_modifier=effect_modifier.value,
            incidents=incidents.value,
        )
        with progress("closed loop") as report:
            simulated = run_simulation(settings, out_dir, report)
    except EXPECTED as exc:
        fatal(str(exc))
    scaled = f" (its effects x {effect_scale:g})" if effect_scale != 1 else ""
    scaled += " (effects varying with area deprivation)" if effect_modifier is EffectModifier.deprivation else ""
    table = Table(
        title=f"closed loop: policy {policy.value}, {retrain.value} retraining, {capacity} places a year on "
        f"{settings.programme}" + scaled
    )
    for col in (
        "cycle",
        "true escalations",
        "prevented by the places",
        "harm prevented",
        "recorded/true listed",
        "recorded/true others",
        "true effect (label)",
        "DR estimate (95% CI)",
    ):
        table.add_column(col, justify="right")
    for r in simulated.cycles.itertuples():
        table.add_row(
            str(r.cycle),
            f"{r.true_escalations:,}",
            f"{r.escalations_prevented_by_the_places:,}",
            f"{r.harm_prevented_by_the_places:,.0f}",
            f"{r.recorded_true_offending_ratio_listed:.2f}",
            f"{r.recorded_true_offending_ratio_others:.2f}",
            f"{r.true_effect_on_label:+.3f}",
            f"{r.dr_estimate:+.3f} ({r.dr_ci_low:+.3f} to {r.dr_ci_high:+.3f})",
        )
    out.print(table)
    out.print("wrote " + ", ".join(str(p) for p in simulated.files))
