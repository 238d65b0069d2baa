"""The learning loop: intervention outcomes -> effect estimates -> treatment-aware retraining.

Learning imports `features` and `models`; it never reads `simulation` truth.
"""
