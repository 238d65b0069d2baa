"""Treatment-aware retraining: a model of the risk of escalation *if no programme is given*.

A naive retrain learns from outcomes that programmes changed: the people a programme helped escalate
less, so the model learns that their profile, or their programme history, means low risk, and lists
such people less next time (Coston et al. 2020; Perdomo et al. 2020). riskloop takes the treatment as
a feature, scored as untreated: the model is trained on every row with its as-of intervention history
(programmes started, completed, active), so the outcomes a programme changed are put down to the
programme and not to the profile of the people it took; and the model scores everyone as if they had
no programme history (`ModelContract.scored_as_untreated`), so being helped can neither lower nor raise
a person's place on the next list, and the history is never given as a reason.

Chosen over censoring a row at a programme start inside its label window with inverse probability of
censoring weights, which riskloop used before: measured on the synthetic world's truth (AUC against
the risk with every programme's effect stopped, the same data retrained both ways, 100,000 people),
censoring ranked up to 0.003 below naive retraining and scoring as untreated 0.0001-0.0016 above it
(docs/architecture.md). Referral follows the incidents of the label window and marks risk that the
records do not show, so censoring drops and reweights the rows of the people most at risk. A start
inside a row's own label window is not a feature (it follows the window's incidents, so it would carry
the outcome): those rows keep the outcome the programme changed. Both choices assume that referral depends on nothing
unrecorded that also drives the outcome; the synthetic world breaks that on purpose.
"""

from __future__ import annotations

import dataclasses

from riskloop.pipelines.data import ModelData

INTERVENTION_FAMILIES = ("intervention", "intervention_completed", "intervention_active")


def treatment_aware(data: ModelData) -> ModelData:
    """The model data with its intervention history features marked to be scored as untreated (0)."""
    if data.snapshot is None or data.catalogue is None:
        raise ValueError("treatment-aware retraining needs a riskloop data set (it reads the interventions table)")
    history = tuple(s.name for s in data.catalogue if s.family in INTERVENTION_FAMILIES and s.name in data.features)
    note = (
        f"treatment-aware: trained on all {len(data.frame):,} rows with the {len(history)} intervention history "
        "features, which are scored as no programme, so programme history cannot move a person on the list"
        if history
        else "treatment-aware: the data has no intervention history features, so this is naive retraining"
    )
    return dataclasses.replace(data, scored_as_untreated=history, warnings=[*data.warnings, note])
