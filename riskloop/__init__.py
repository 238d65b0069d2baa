"""riskloop command line."""
