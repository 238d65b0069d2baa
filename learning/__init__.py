"""The learning loop: outcomes -> what worked, for whom -> treatment-aware retraining -> challenger
(docs/architecture.md, "Learning"). It reuses the score and train pipelines and never reads the
synthetic world's truth; the closed-loop simulator in `simulation/` passes truth in from the edge.
"""
