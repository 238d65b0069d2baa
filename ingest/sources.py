"""Read each declared source into a DataFrame of text: CSV, Parquet, Excel (openpyxl) or a database.

Every cell comes back as a stripped string or missing (<NA>): the mapping, not the reader, decides what a
value means. A database's SQLAlchemy URL is read from the environment variable the mapping names; it may
hold a password, so it is never printed, not even in an error.
"""

from __future__ import annotations

import os

import pandas as pd

from riskloop.features.io import DataError
from riskloop.ingest.mapping import Source


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell a stripped string, blanks missing; column names as strings. Whole numbers stored as floats
    (a typed column with a gap) read as whole numbers: `1500`, not `1500.0`."""
    whole = {
        c: "Int64"
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c]) and (frame[c].dropna() % 1 == 0).all()
    }
    text = frame.astype(whole).astype("string").apply(lambda column: column.str.strip())
    text = text.mask(text == "")
    text.columns = [str(c) for c in text.columns]
    return text.reset_index(drop=True)


def _read_file(name: str, source: Source) -> pd.DataFrame:
    path = source.file
    assert path is not None
    if not path.exists():
        raise DataError(f"source {name}: file not found: {path}")
    try:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_excel(path, sheet_name=source.sheet or 0, dtype=str, engine="openpyxl")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"source {name}: {path.name} is not UTF-8 text (it holds the byte {exc.object[exc.start]:#04x}): "
            "save it as UTF-8 (Excel: 'CSV UTF-8')"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise DataError(f"source {name}: {path.name} cannot be read ({exc.__class__.__name__}: {exc})") from None


def _read_database(name: str, source: Source) -> pd.DataFrame:
    import sqlalchemy

    database = source.database
    assert database is not None
    url = os.environ.get(database.url_env)
    if not url:
        raise DataError(f"source {name}: set the environment variable {database.url_env} to the database's URL")
    statement: sqlalchemy.Executable
    if database.table is not None:
        schema, _, table_name = database.table.rpartition(".")  # "dbo.cases": table cases in schema dbo
        table = sqlalchemy.table(table_name, schema=schema or None)
        statement = sqlalchemy.select(sqlalchemy.text("*")).select_from(table)
    else:
        statement = sqlalchemy.text(database.query or "")
    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:  # noqa: BLE001 - the URL itself must not reach the message
        raise DataError(
            f"source {name}: {database.url_env} is not a usable database URL ({exc.__class__.__name__})"
        ) from None
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(statement, connection)
    except Exception as exc:  # noqa: BLE001
        what = f"table {database.table}" if database.table else "its query"
        raise DataError(
            f"source {name}: cannot read {what} from the database in {database.url_env} ({exc.__class__.__name__})"
        ) from None
    finally:
        engine.dispose()


def read_source(name: str, source: Source) -> pd.DataFrame:
    """The source's rows, every cell text or missing."""
    frame = _read_file(name, source) if source.file is not None else _read_database(name, source)
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"source {name}: column '{duplicated[0]}' appears twice")
    return as_text(frame)


def read_sources(sources: dict[str, Source]) -> dict[str, pd.DataFrame]:
    return {name: read_source(name, source) for name, source in sources.items()}
