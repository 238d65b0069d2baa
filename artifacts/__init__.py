"""The catalogue of artifacts: one module per folder or file riskloop writes or reads, each with its one
typed reader and writer. Nothing else in riskloop opens these files.

| artifact | module | reader | writer |
| --- | --- | --- | --- |
| data set folder (tables, `dataset.json`, `_quarantine/`) | `dataset` | `read_dataset` | `write_dataset`, `write_quarantine` |
| snapshot file (`riskloop features`) | `snapshots` | `read_snapshots` | `write_snapshots` |
| training output folder (contract, metrics, reports) | `training` | `read_training` | `write_training` |
| scores folder (prioritisation, lists, `manifest.json`) | `scores` | `read_scores` | `write_scores` |
| learning folder (effects, drift, `learning.json`, report) | `learning` | `read_learning` | `write_learning` |
| declaration files a person writes (experiment config, ingest mapping: YAML) | `declared` | `read_declaration` | - |
"""
