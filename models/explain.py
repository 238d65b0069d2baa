"""Attributions and plain-language reason codes.

Attributions are SHAP values on the *uncalibrated* model's log-odds, as the model's family
(`riskloop.models.families`) computes them: LightGBM's TreeSHAP values (`predict(..., pred_contrib=True)`, computed
by leaf patterns in `riskloop.models.treeshap`)
or, for the logistic models and the GAM, the exact linear decomposition coef x (z - mean z) mapped back
from the transformed columns to the original features. Each row's attributions plus its base value sum
to the raw score.

Reason codes: the top features pushing risk *up*, windows of one family merged, each turned into
a sentence from its catalogue template with the person's own value. A sentence says what is true of
the value: a trend's direction follows its sign; a rate is called high only above the training
population's 75th percentile (typical between the quartiles, low below); a recency past the lookback
reads "no incident ... in the last 3 years"; a presence ("repeat victimisation") is never said of a
zero, which is passed over for the next reason. Protected characteristics and age are never reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskloop.features.catalogue import FeatureSpec, window_words
from riskloop.models.families import family_of

_WINDOW = re.compile(r"_\d+d$")
_VALUE = re.compile(r"\{value[^}]*\}")


def _direction(value: float) -> str:
    return "rising" if value > 0 else "falling" if value < 0 else "steady"


def _quartiles(values: np.ndarray) -> tuple[float, float, float]:
    low, median, high = (float(q) for q in np.nanquantile(values, [0.25, 0.5, 0.75]))
    return low, median, high


@dataclass(frozen=True)
class ReasonTemplates:
    """Per feature: the sentence template, the family group whose windows merge into one reason, for
    templates that place a value ({level}) the training population's quartiles, and for recencies and
    values capped at the lookback the value from which a sentence of its own is said ("none in the
    lookback", "at least 1095 days ago")."""

    template: dict[str, str]
    group: dict[str, str]
    excluded: frozenset[str]
    quartiles: dict[str, tuple[float, float, float]]
    none: dict[str, tuple[float, str]]

    @classmethod
    def build(
        cls,
        features: list[str],
        catalogue: list[FeatureSpec] | None,
        protected: list[str],
        reference: pd.DataFrame | None = None,
        lookback_days: int | None = None,
    ) -> ReasonTemplates:
        """`reference`: the training rows, whose quartiles say what is high, typical or low (without
        them a value's level is not claimed: "a rate of ..."); `lookback_days`: the snapshots'
        lookback, past which a recency means none and at which a capped value means "at least"."""
        specs = {s.name: s for s in catalogue or []}
        template, group = {}, {}
        for name in features:
            spec = specs.get(name)
            template[name] = spec.template if spec else name.replace("_", " ") + " = {value:g}"
            group[name] = _WINDOW.sub("", name) if spec and spec.window_days else name
        excluded = {f for f in features if f in protected or (f in specs and specs[f].family == "age")}
        quartiles = (
            {}
            if reference is None
            else {f: _quartiles(reference[f].to_numpy(float)) for f in features if "{level}" in template[f]}
        )
        none: dict[str, tuple[float, str]] = {}
        if lookback_days is not None:
            for f in features:
                spec = specs.get(f)
                if spec and spec.template_none:
                    none[f] = (lookback_days + 1, spec.template_none.format(lookback=window_words(lookback_days)))
                if spec and spec.template_capped:
                    none[f] = (lookback_days, spec.template_capped.format(lookback=f"{lookback_days:,} days"))
        return cls(template, group, frozenset(excluded), quartiles, none)

    def sentence(self, feature: str, value) -> str:
        """The feature's reason for this value, or "" when its template would not be true of it."""
        template = self.template[feature]
        try:
            number = float(value)
        except (TypeError, ValueError):  # a category
            return _VALUE.sub(str(value), template)
        if number == 0 and "{direction}" not in template and "{level}" not in template:
            return ""  # nothing recorded is no reason for risk (a rate or trend says what its 0 means)
        if feature in self.none and number >= self.none[feature][0]:
            return self.none[feature][1]
        if "{direction}" in template:
            number = round(number, 1) + 0.0  # the sign of what is printed; -0.0 becomes 0.0
        return template.format(value=number, direction=_direction(number), level=self._level(feature, number))

    def _level(self, feature: str, value: float) -> str:
        if feature not in self.quartiles:
            return "a"
        low, _, high = self.quartiles[feature]
        return "a high" if value > high else "a low" if value < low else "a typical"


def attributions(pipeline, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """(SHAP values in log-odds, one column per feature; base value per row) for a fitted pipeline, as its
    model family computes them."""
    return family_of(pipeline).explain(pipeline, X)


def _merge_groups(contrib: pd.DataFrame, templates: ReasonTemplates) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(allowed features; per family group and row the merged contribution, its members' sum in column
    order; per group and row the member that contributes most, the first of equals, which stands for the
    group). Contributions are finite."""
    allowed = [c for c in contrib.columns if c not in templates.excluded]
    codes, uniques = pd.factorize(pd.Index([templates.group[c] for c in allowed]))
    by_feature = np.ascontiguousarray(contrib[allowed].to_numpy().T)  # one contiguous row per feature
    merged = np.empty((len(uniques), len(contrib)))
    best_member = np.empty((len(uniques), len(contrib)), dtype=np.intp)
    for group in range(len(uniques)):
        members = np.flatnonzero(codes == group)
        if len(members) == 1:
            merged[group] = by_feature[members[0]]
            best_member[group] = members[0]
        else:
            block = by_feature[members]
            merged[group] = block.sum(axis=0)
            best_member[group] = members[block.argmax(axis=0)]
    return allowed, merged, best_member


def top_reasons(contrib: pd.DataFrame, values: pd.DataFrame, templates: ReasonTemplates, top: int = 3) -> pd.DataFrame:
    """Columns reason_1..reason_top: the largest positive merged contributions, as sentences (a
    contribution whose sentence would not be true is passed over for the next).

    Vectorised by feature: at each rank, the rows still wanting a reason take their next group (of
    equal contributions the earlier group first), and each feature's sentences are written once per
    distinct value, then spread over that feature's rows.
    """
    allowed, merged, best_member = _merge_groups(contrib, templates)
    shown = values[allowed]
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in shown.dtypes)
    raw = shown.to_numpy(dtype=float if numeric else object)  # an object matrix of millions of floats costs seconds
    out = np.full((len(contrib), top), "", dtype=object)
    given = np.zeros(len(contrib), dtype=int)
    said: list[dict] = [{} for _ in allowed]  # per feature: value -> sentence (counts repeat)
    remaining = merged.copy()  # a group once taken is -inf
    wanting = np.arange(len(contrib))
    for _ in range(len(merged)):
        group_idx = remaining[:, wanting].argmax(axis=0)
        keep = merged[group_idx, wanting] > 0
        wanting, group_idx = wanting[keep], group_idx[keep]
        if len(wanting) == 0:
            break
        remaining[group_idx, wanting] = -np.inf
        member = best_member[group_idx, wanting]
        text = np.full(len(wanting), "", dtype=object)
        order = np.argsort(member, kind="stable")
        starts = np.flatnonzero(np.r_[True, member[order][1:] != member[order][:-1]])
        for rows in np.split(order, starts[1:]):
            m = member[rows[0]]
            text[rows] = _sentences(templates, allowed[m], raw[wanting[rows], m], said[m])
        spoken = text != ""
        rows = wanting[spoken]
        out[rows, given[rows]] = text[spoken]
        given[rows] += 1
        wanting = wanting[given[wanting] < top]
    return pd.DataFrame(out, index=contrib.index, columns=[f"reason_{r + 1}" for r in range(top)])


def _sentences(templates: ReasonTemplates, feature: str, values: np.ndarray, said: dict) -> np.ndarray:
    """The feature's sentence for each value, each distinct value formatted once (and remembered in `said`)."""
    if values.dtype.kind == "f":
        distinct, inverse = np.unique(values + 0.0, return_inverse=True)  # -0.0 is 0.0; one NaN
    else:
        inverse, distinct = pd.factorize(values, use_na_sentinel=False)
    texts = np.empty(len(distinct), dtype=object)
    for k, value in enumerate(distinct):
        text = said.get(value)
        if text is None:
            text = said[value] = templates.sentence(feature, value)
        texts[k] = text
    return texts[inverse]
