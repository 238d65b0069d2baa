"""Batch scoring into prioritisation lists and the REST API (DESIGN.md sections 6-7).

Serving imports `models` and `features`, never the reverse.
"""
