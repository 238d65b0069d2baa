"""Looking strings up among keys by Arrow's hash kernels: pandas' `Index.get_indexer` and `isin` are several
times slower on millions of strings (docs/validation.md, "Scoring all of Wales")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow_text(values: pd.Series | Sequence[str]) -> pa.Array | pa.ChunkedArray:
    """The values as Arrow strings (a Series of Arrow strings goes as it is, without a copy)."""
    return pa.array(pd.Series(values).astype("string[pyarrow]").array)


def key_positions(values: pd.Series, keys: pd.Series | Sequence[str]) -> np.ndarray:
    """Each value's position in `keys` (the first, if a key is there twice), -1 where it is not a key."""
    found = pc.index_in(arrow_text(values), value_set=arrow_text(keys))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def key_isin(values: pd.Series, keys: pd.Series | Sequence[str]) -> pd.Series:
    """`values.isin(keys)`, aligned with `values` (a missing value is not in)."""
    hit = pc.is_in(arrow_text(values), value_set=arrow_text(keys))
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)
