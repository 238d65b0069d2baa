"""Batch scoring into prioritisation lists and the scoring API (docs/architecture.md, "Serving").

Serving reads models through `riskloop.experiments.registry` and scores through `riskloop.pipelines.score`;
nothing below it imports serving.
"""
