"""Names that people read: metric and column names as words, never as code."""

from __future__ import annotations

WORDS = {
    "roc_auc": "ROC AUC",
    "average_precision": "average precision",
    "precision_at_k": "precision at k",
    "recall_at_k": "recall at k",
    "brier": "Brier score",
    "ece": "expected calibration error",
    "precision_at_k_area_mean": "precision at k (mean over areas)",
    "precision_at_k_area_min": "precision at k (worst area)",
    "selection_rate": "selection rate",
    "false_positive_rate": "false positive rate",
    "false_negative_rate": "false negative rate",
    "precision": "precision",
    "false_discovery_rate": "false discovery rate",
    "false_omission_rate": "false omission rate",
    "mean_predicted": "mean predicted risk",
    "observed": "observed rate",
    "calibration_gap": "calibration gap",
    "observed_ci_low": "observed rate, 95% CI low",
    "observed_ci_high": "observed rate, 95% CI high",
    "ci": "95% CI",
    "rate_ci": "rate, 95% CI",
    "excess_ci": "excess, 95% CI",
    "counted": "counted",
    "out_of": "out of",
    "reference_rate": "reference group's rate",
    "selected": "selected",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "n": "people",
    "small": "small group",
    "reference_value": "reference group's value",
    "mean_risk": "mean model risk",
    "mean_true": "mean true probability (equal recording)",
    "mean_recorded": "mean true probability (as recorded)",
    "relative": "model over-statement vs reference",
    "recording_relative": "recording over-statement vs reference",
    "top10_overlap_mean": "top-10 features kept from one split to the next",
    "listed_by_both_models": "people listed by both of the last two models",
    "first_reason_changed_share": "share of those whose first reason changed",
    "prevalence": "prevalence",
    "k": "k (people prioritised)",
    "observed_events": "observed events",
    "expected_events": "expected events",
    "ratio": "ratio",
    "excess": "excess over the reference",
    "excess_ci_low": "excess, 95% CI low",
    "excess_ci_high": "excess, 95% CI high",
    "implied_rate": "rate its own risks imply",
    "rate_ci_low": "rate, 95% CI low",
    "rate_ci_high": "rate, 95% CI high",
    "events": "events",
    "errors": "errors",
    "auc": "ROC AUC",
    "strength": "proxy strength",
    "too_few": "too few to judge",
    "t_learner": "T-learner",
    "x_learner": "X-learner",
}
_SUFFIXES = {"_mean": " (mean)", "_std": " (spread)", "_regret": " (regret)"}


def words(name: str) -> str:
    """'false_negative_rate' -> 'false negative rate'; 'roc_auc_mean' -> 'ROC AUC (mean)'."""
    if name.startswith("test_") and name[5:] in WORDS:
        return WORDS[name[5:]] + " on test"
    if name in WORDS:
        return WORDS[name]
    for suffix, said in _SUFFIXES.items():
        if name.endswith(suffix) and name[: -len(suffix)] in WORDS:
            return WORDS[name[: -len(suffix)]] + said
    return name.replace("_", " ")
