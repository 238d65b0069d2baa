"""Experiment configs, temporal validation and MLflow tracking, registry and promotion."""
