"""Attributions and plain-language reason codes.

Attributions are SHAP values on the *uncalibrated* model's log-odds: LightGBM's own TreeSHAP
(`predict(..., pred_contrib=True)`) or, for the logistic models, the exact linear decomposition
coef x (z - mean z) mapped back from the transformed columns to the original features. Each
row's attributions plus its base value sum to the raw score.

Reason codes: the top features pushing risk *up*, windows of one family merged, each turned into
a sentence from its catalogue template with the person's own value. Protected characteristics and
age are never reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskloop.features.catalogue import FeatureSpec

_WINDOW = re.compile(r"_\d+d$")


@dataclass(frozen=True)
class ReasonTemplates:
    """Per feature: the sentence template and the family group whose windows merge into one reason."""

    template: dict[str, str]
    group: dict[str, str]
    excluded: frozenset[str]

    @classmethod
    def build(cls, features: list[str], catalogue: list[FeatureSpec] | None, protected: list[str]) -> "ReasonTemplates":
        specs = {s.name: s for s in catalogue or []}
        template, group = {}, {}
        for name in features:
            spec = specs.get(name)
            template[name] = spec.template if spec else name.replace("_", " ") + " = {value:g}"
            group[name] = _WINDOW.sub("", name) if spec and spec.window_days else name
        excluded = {f for f in features if f in protected or (f in specs and specs[f].family == "age")}
        return cls(template, group, frozenset(excluded))

    def sentence(self, feature: str, value) -> str:
        try:
            return self.template[feature].format(value=float(value))
        except (TypeError, ValueError):
            return self.template[feature].replace("{value:g}", str(value)).replace("{value:.1f}", str(value)) \
                .replace("{value:.0f}", str(value))


def _is_lightgbm(pipeline) -> bool:
    return hasattr(pipeline.named_steps["model"], "contributions")


def attributions(pipeline, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """(SHAP values in log-odds, one column per feature; base value per row) for a fitted pipeline."""
    encoded = pipeline.named_steps["preprocess"].transform(X)
    if _is_lightgbm(pipeline):
        contrib = pipeline.named_steps["model"].contributions(encoded)
        return pd.DataFrame(contrib[:, :-1], index=X.index, columns=X.columns), contrib[:, -1]
    columns = pipeline.named_steps["columns"]
    model = pipeline.named_steps["model"]
    z = columns.transform(encoded)
    z = z.toarray() if hasattr(z, "toarray") else np.asarray(z)
    centre = getattr(pipeline, "riskloop_column_means_", None)
    centre = np.zeros(z.shape[1]) if centre is None else centre
    parts = (z - centre) * model.coef_[0]
    base = float(model.intercept_[0] + model.coef_[0] @ centre)
    out = pd.DataFrame(0.0, index=X.index, columns=X.columns)
    for k, name in enumerate(columns.get_feature_names_out()):
        source = _source_feature(name, list(X.columns))
        out[source] += parts[:, k]
    return out, np.full(len(X), base)


def _source_feature(transformed: str, features: list[str]) -> str:
    """'numeric__age' -> 'age'; 'categorical__charge_degree_F' -> 'charge_degree'."""
    name = transformed.split("__", 1)[1]
    if name in features:
        return name
    return max((f for f in features if name.startswith(f + "_")), key=len)


def remember_linear_centre(pipeline, X_reference: pd.DataFrame) -> None:
    """Store the transformed columns' means on a linear pipeline, the reference of its decomposition."""
    if not _is_lightgbm(pipeline):
        encoded = pipeline.named_steps["preprocess"].transform(X_reference)
        z = pipeline.named_steps["columns"].transform(encoded)
        z = z.toarray() if hasattr(z, "toarray") else np.asarray(z)
        pipeline.riskloop_column_means_ = z.mean(axis=0)


def top_reasons(contrib: pd.DataFrame, values: pd.DataFrame, templates: ReasonTemplates, top: int = 3) -> pd.DataFrame:
    """Columns reason_1..reason_top: the largest positive merged contributions, as sentences."""
    allowed = [c for c in contrib.columns if c not in templates.excluded]
    groups = pd.Index([templates.group[c] for c in allowed])
    codes, uniques = pd.factorize(groups)
    values_c = contrib[allowed].to_numpy()
    merged = np.zeros((len(contrib), len(uniques)))
    np.add.at(merged.T, codes, values_c.T)
    # the window that contributes most stands for its merged group
    best_member = np.full((len(contrib), len(uniques)), -1)
    best_value = np.full((len(contrib), len(uniques)), -np.inf)
    for j, code in enumerate(codes):
        better = values_c[:, j] > best_value[:, code]
        best_value[better, code] = values_c[better, j]
        best_member[better, code] = j
    order = np.argsort(-merged, axis=1, kind="stable")[:, :top]
    raw = values[allowed].to_numpy(dtype=object)
    out = {}
    for r in range(top):
        if r >= order.shape[1]:  # fewer feature groups than reasons asked for
            out[f"reason_{r + 1}"] = [""] * len(contrib)
            continue
        group_idx = order[:, r]
        positive = merged[np.arange(len(contrib)), group_idx] > 0
        member = best_member[np.arange(len(contrib)), group_idx]
        out[f"reason_{r + 1}"] = [templates.sentence(allowed[m], raw[i, m]) if ok else ""
                                  for i, (m, ok) in enumerate(zip(member, positive))]
    return pd.DataFrame(out, index=contrib.index)
