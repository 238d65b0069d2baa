"""Looking strings up among keys and finding repeated keys: Arrow's hash kernels and pandas on small data, DuckDB's
hash join and aggregate (on the CPUs this process may use) on millions of strings, where pandas' `get_indexer`,
`isin` and `duplicated`, and Arrow's one-threaded `index_in`, are several times slower (docs/validation.md,
"Scoring all of Wales")."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from joblib import effective_n_jobs


def arrow_text(values: pd.Series | Sequence[str]) -> pa.Array | pa.ChunkedArray:
    """The values as Arrow strings (a Series of Arrow strings goes as it is, without a copy)."""
    return pa.array(pd.Series(values).astype("string[pyarrow]").array)


# From this many keys a DuckDB hash join answers `key_positions` faster than Arrow's `index_in`, which hashes every
# key on one thread: 0.12-0.20 s against 0.9-1.3 s for 0.33 M interventions' people among 3.7 M (DuckDB builds on
# the smaller side), 0.53-0.72 s against 1.6-1.8 s for 4.9 M incidents' (both CPUs). Below it DuckDB's 20 ms to
# connect is most of the cost.
JOINED_KEYS = 65_536


def key_positions(values: pd.Series | Sequence[str], keys: pd.Series | Sequence[str]) -> np.ndarray:
    """Each value's position in `keys` (the first, if a key is there twice), -1 where it is not a key or missing.
    Values and keys are compared as text."""
    text, key_text = arrow_text(values), arrow_text(keys)
    if len(text) and len(key_text) >= JOINED_KEYS and (positions := _joined_positions(text, key_text)) is not None:
        return positions
    found = pc.index_in(text, value_set=key_text, skip_nulls=True)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _joined_positions(values: pa.Array | pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Each value's position in `keys` by a DuckDB join (-1 where none), or None where a value meets a key that is
    there twice (which position is the first is then left to Arrow). The join stops one pair past a pair per
    value, so such keys never multiply its rows."""
    value_rows = pa.table({"key": values, "row": np.arange(len(values))})
    key_rows = pa.table({"key": keys, "position": np.arange(len(keys))})
    with _duckdb() as db:
        db.register("value_rows", value_rows)
        db.register("key_rows", key_rows)
        joined = f"SELECT row, position FROM value_rows JOIN key_rows USING (key) LIMIT {len(values) + 1}"
        pairs = db.sql(joined).to_arrow_table()
    positions = np.full(len(values), -1, dtype=np.int64)
    positions[pairs["row"].to_numpy()] = pairs["position"].to_numpy()
    return positions if pairs.num_rows == np.count_nonzero(positions >= 0) else None


def key_isin(values: pd.Series, keys: pd.Series | Sequence[str]) -> pd.Series:
    """`values.isin(keys)`, aligned with `values` (a missing value is not in)."""
    hit = pc.is_in(arrow_text(values), value_set=arrow_text(keys))
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)


# From this many rows DuckDB tells whether any key repeats faster than pandas marks them: 0.16 s against 0.24 s on
# 1 M keys of two columns, 0.67 s against 2.7 s on 4.9 M incident keys of three; below it DuckDB's 20 ms to connect
# is most of the cost (49 ms against 33 ms on 200,000).
AGGREGATED_ROWS = 400_000


def repeated_keys(key: pd.DataFrame) -> pd.Series:
    """Whether each row's key (the frame's columns, every one present) is on more than one row. From
    `AGGREGATED_ROWS` rows whether any key repeats is asked of DuckDB first (a hash aggregate on the CPUs this
    process may use), and pandas marks the rows only when one does."""
    if len(key) >= AGGREGATED_ROWS and not _any_repeated(key):
        return pd.Series(False, index=key.index)
    return key.duplicated(keep=False) & key.notna().all(axis=1)


def _any_repeated(key: pd.DataFrame) -> bool:
    """Whether any key whose every part is present is on more than one row, by DuckDB."""
    columns = ", ".join(f'"{c}"' for c in key.columns)
    present = " AND ".join(f'"{c}" IS NOT NULL' for c in key.columns)
    with _duckdb() as db:
        db.register("keys", pa.Table.from_pandas(key, preserve_index=False))
        found = db.execute(f"SELECT EXISTS (SELECT 1 FROM keys WHERE {present} GROUP BY {columns} HAVING count(*) > 1)")
        return found.fetchone() == (True,)


def _duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB on the CPUs this process may use, spilling (if ever) to the system's temporary folder,
    not to `.tmp` in the working directory, DuckDB's default for an in-memory database."""
    return duckdb.connect(config={"threads": effective_n_jobs(-1), "temp_directory": tempfile.gettempdir()})
