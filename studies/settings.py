"""The closed loop's settings (`riskloop simulate`), apart from the loop so that reading them is cheap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from riskloop.simulation.parameters import PROGRAMMES

Policy = Literal["none", "random", "risk", "uplift"]
POLICIES = ("none", "random", "risk", "uplift")


@dataclass(frozen=True)
class LoopSettings:
    people: int = 20_000
    seed: int = 0
    cycles: int = 4
    capacity: int = 200  # places on the programme per cycle
    policy: Policy = "risk"
    retrain: Literal["naive", "treatment-aware"] = "treatment-aware"
    surveillance_effect: float = 1.0  # recording multiplier for the listed, for their cycle
    programme: str = "drive"
    threads: int | None = None
    effect_scale: float = 1.0  # the world's programmes work this many times as well (Dynamics)
    compare_retraining: bool = False  # also retrain the other way on the same data, and rank with both
    ceiling: bool = False  # also run the world with no programme effect, retrained naively (run_loop)
    effect_modifier: Literal["aces", "deprivation"] = "aces"  # what the programmes' effects vary with (Dynamics)
    incidents: Literal["all", "reported"] = "all"  # the incidents models are trained on (ExperimentConfig.incidents)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy: expected one of {', '.join(POLICIES)}, got '{self.policy}'")
        if self.incidents not in ("all", "reported"):
            raise ValueError(f"incidents: expected all or reported, got '{self.incidents}'")
        if self.programme not in PROGRAMMES:
            raise ValueError(f"programme: expected one of {', '.join(PROGRAMMES)}, got '{self.programme}'")
        if (
            not (1 <= self.surveillance_effect < float("inf") and 0 <= self.effect_scale < float("inf"))
            or self.cycles < 1
            or self.capacity < 0
            or self.people < 1000
        ):
            raise ValueError(
                "the surveillance effect must be finite and >= 1, the effect scale finite and >= 0, "
                "cycles >= 1, capacity >= 0 and people >= 1000"
            )

    @property
    def other_retrain(self) -> Literal["naive", "treatment-aware"]:
        return "naive" if self.retrain == "treatment-aware" else "treatment-aware"
