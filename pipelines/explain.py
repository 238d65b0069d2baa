"""The explain pipeline: a scored cohort -> attributions of a band-stratified sample and, on request,
one person's attributions and reasons. `riskloop.reports.explain_report` draws them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskloop.models.families import family_of
from riskloop.models.scorer import RiskScorer
from riskloop.pipelines.score import ScoredCohort


@dataclass(frozen=True)
class PersonExplanation:
    person_id: str
    risk: float
    band: int
    band_label: str
    reasons: tuple[str, ...]
    values: pd.Series  # the person's feature values
    contributions: pd.Series  # SHAP values in log-odds
    base: float


@dataclass(frozen=True)
class CohortExplanation:
    values: pd.DataFrame  # feature values of the sample
    contributions: pd.DataFrame  # SHAP values of the sample (log-odds of the uncalibrated model)
    base: np.ndarray
    cohort_size: int
    method: str
    person: PersonExplanation | None

    @property
    def whole_cohort(self) -> bool:
        return len(self.values) == self.cohort_size


def stratified_sample(scored: pd.DataFrame, size: int, seed: int) -> pd.Index:
    """Up to `size` rows with every risk band equally represented (high bands are what lists use)."""
    per_band = max(1, size // 20)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(rows, size=min(per_band, len(rows)), replace=False)
        for _, rows in scored.groupby("band").indices.items()
    ]
    return scored.index[np.sort(np.concatenate(chosen))]


def explain_person(scorer: RiskScorer, cohort: ScoredCohort, person_id: str) -> PersonExplanation:
    match = cohort.frame.index[cohort.frame["person_id"] == person_id]
    if len(match) == 0:
        raise ValueError(f"person '{person_id}' is not in the cohort at {cohort.as_of}")
    one = cohort.frame.loc[match[:1]]
    contributions, base = scorer.attributions(one)
    scored = scorer.score(one, reasons=3).iloc[0]
    return PersonExplanation(
        person_id,
        float(scored["risk"]),
        int(scored["band"]),
        str(scored["band_label"]),
        tuple(scored[f"reason_{k}"] for k in (1, 2, 3)),
        one[scorer.features].iloc[0],
        contributions.iloc[0],
        float(base[0]),
    )


def explain_cohort(
    scorer: RiskScorer, cohort: ScoredCohort, sample_size: int = 20_000, person: str | None = None, seed: int = 0
) -> CohortExplanation:
    rows = stratified_sample(cohort.frame, sample_size, seed)
    values = cohort.frame.loc[rows, scorer.features]
    contributions, base = scorer.attributions(values)
    return CohortExplanation(
        values,
        contributions,
        base,
        len(cohort.frame),
        family_of(scorer.pipeline).method,
        explain_person(scorer, cohort, person) if person is not None else None,
    )
