"""Studies of riskloop in the synthetic world: the closed loop (`riskloop simulate`) drives the world
(`riskloop.simulation`) with the scoring, learning and retraining that a partnership would run, and
keeps the world's truth beside every estimate. It sits above learning and the world; nothing but the
jobs, tests and benchmarks imports it."""
