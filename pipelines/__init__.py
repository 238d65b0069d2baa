"""Pipelines: typed inputs -> typed results; the seam that serving, learning and the CLI reuse (docs/architecture.md)."""
