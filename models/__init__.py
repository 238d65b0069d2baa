"""Estimators, calibration, fairness audit and explanations."""
