"""riskloop's jobs as a library: each takes typed settings and returns a typed result, the same call the
command line makes. For example, in a notebook:

    from riskloop.jobs.model import TrainJob, train
    trained = train(TrainJob(Path("experiments/escalation.yaml"), data=Path("riskloop-demo/data")))
    trained.result.summary        # every model group across the temporal splits

| job | module | settings -> result |
| --- | --- | --- |
| generate, validate, features | `data` | `GenerateJob` -> row counts; folder -> `Dataset`; `SnapshotJob` -> `Snapshots` |
| train, explain, audit | `model` | `TrainJob` -> `Trained`; `ExplainJob` -> `Explained`; `AuditJob`, `TableAuditJob` -> `Audited` |
| score | `score` | `ScoreJob` -> `ScoreOutcome` (the scores folder's `Manifest`) |
| learn | `learn` | `LearnJob` -> `Learned` |
| dashboard | `dashboard` | `DashboardJob` -> `Dashboard` |
| simulate | `simulate` | `LoopSettings` -> `Simulated` |
| demo | `demo` | `DemoJob` -> `DemoResult` |
"""
