"""Apply a mapping to the sources' rows (pure functions): every row ingested, excluded or quarantined.

A feed's rows are mapped column by column: value maps into the contract's vocabulary (a value on the
feed's `exclude:` list is left out and counted; a value with no mapping quarantines the row with
`unmapped <column> value 'X'`), dates parsed with the mapping's formats in order (`unparseable date in
<column>`; a birth date no format reads counts as missing, since linked records may hold it), harm weights
looked up by code (`no harm weight for code 'X'`). Record ids (incident, intervention) become keyed hashes, so no agency reference reaches the contract. The identity columns of
each row make the person records that linkage clusters; `build_contract` then makes one contract person
per cluster (attributes reconciled across its records, birth date coarsened to the month), keys every row
by the cluster's pseudonym, validates the tables against the contract and sends any row the contract
rejects back to its source's quarantine, so per feed read = ingested + excluded + quarantined.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from riskloop.features.io import DataError
from riskloop.features.schema import TableSchema
from riskloop.features.validate import ValidationReport, validate_tables
from riskloop.ingest.linkage import Linkage
from riskloop.ingest.mapping import DATE_COLUMNS, PERSON_ATTRIBUTES, SCHEMAS, VOCABULARY, Feed, Mapping, PeopleRules
from riskloop.ingest.pseudonym import pseudonymise

RECORD_COLUMNS = ("source", "source_id", "first_name", "last_name", "birth_date", "sex", "ethnicity", "area_id")
_ID_PREFIX = {"incidents": "i", "interventions": "v"}
_QUOTED = re.compile(r" '[^']*'")


def check_columns(mapping: Mapping, frames: dict[str, pd.DataFrame]) -> None:
    """Raise DataError in one line for the first column the mapping names that its source lacks."""

    def lacking(source: str, column: str, where: str) -> None:
        if column not in frames[source].columns:
            have = ", ".join(frames[source].columns)
            raise DataError(f"{where}: source {source} has no column '{column}' (it has: {have})")

    for table, i, feed in mapping.feeds():
        available = [feed.source] + ([feed.join.source] if feed.join else [])
        if feed.join:
            lacking(feed.source, feed.join.column, f"{table}[{i}].join.column")
            lacking(feed.join.source, feed.join.column, f"{table}[{i}].join.column")
        for column, where in feed.source_columns().items():
            if not any(column in frames[s].columns for s in available):
                lacking(feed.source, column, f"{table}[{i}].{where}")
    if mapping.harm_weights is not None:
        h = mapping.harm_weights
        lacking(h.source, h.code, "harm_weights.code")
        lacking(h.source, h.weight, "harm_weights.weight")


def join_counts(mapping: Mapping, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per joined source: its rows, those no feed row joined (not ingested: listed, never silent), and the rows
    whose key repeats an earlier one (the first is the one joined)."""
    rows = []
    for table, i, feed in mapping.feeds():
        if feed.join is None:
            continue
        other, column = frames[feed.join.source], feed.join.column
        keys = other[column]
        rows.append(
            {
                "source": feed.join.source,
                "joined to": f"{table}[{i}] ({feed.source})",
                "rows": len(other),
                "not joined": int((~keys.isin(frames[feed.source][column])).sum()),
                "repeated keys": int(keys.duplicated().sum()),
            }
        )
    return pd.DataFrame(rows, columns=["source", "joined to", "rows", "not joined", "repeated keys"])


def harm_lookup(mapping: Mapping, frames: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Code -> weight from the partnership's harm table; a weight that is not a number >= 0, or a code given
    two weights, is one line."""
    h = mapping.harm_weights
    if h is None:
        return {}
    table = frames[h.source][[h.code, h.weight]].dropna(subset=[h.code]).drop_duplicates()
    weights = pd.to_numeric(table[h.weight], errors="coerce")
    bad = table[weights.isna() | (weights < 0)]
    if len(bad):
        raise DataError(f"harm_weights: code {bad.iloc[0][h.code]}: weight {bad.iloc[0][h.weight]!r} is not >= 0")
    twice = table[table[h.code].duplicated()]
    if len(twice):
        raise DataError(f"harm_weights: code {twice.iloc[0][h.code]} is given two weights")
    return dict(zip(table[h.code], weights.astype(float)))


def parse_dates(cells: pd.Series, formats: list[str]) -> pd.Series:
    """Each cell parsed with the first format that reads it (NaT if none does, or if blank)."""
    parsed = pd.Series(pd.NaT, index=cells.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = parsed.isna() & cells.notna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(cells[todo], format=fmt, errors="coerce")
    return parsed


def split_full_name(names: pd.Series) -> tuple[pd.Series, pd.Series]:
    """("Forename Surname" or "SURNAME, Forename") -> (forenames, surname)."""
    text = names.astype("string")
    comma = text.str.contains(",", regex=False).fillna(False)
    parts = text.str.rsplit(" ", n=1)
    first = parts.str[0].where(parts.str.len() > 1)
    last = parts.str[-1]
    flipped = text.str.split(",", n=1)
    first = first.where(~comma, flipped.str[1].str.strip())
    last = last.where(~comma, flipped.str[0].str.strip())
    return first.astype("string"), last.astype("string")


def record_ids(values: pd.Series, key: bytes, prefix: str) -> pd.Series:
    """A record's contract id: `prefix` + HMAC-SHA256(key, value) hex[:24] (the agency reference stays out)."""
    return values.map(lambda v: prefix + hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:24]).astype("string")


@dataclass(frozen=True)
class FeedResult:
    """A feed's rows after mapping: `rows` ingested (contract columns as text, `_row` the source row number
    from 1, and the person record columns for a feed about people), `quarantine` the source rows with `row`
    and `reason`, `excluded` the counts of values deliberately left out, `unmapped` feed/column/value/rows."""

    table: str
    feed: str
    source: str
    read: int
    rows: pd.DataFrame
    quarantine: pd.DataFrame
    excluded: dict[str, int]
    unmapped: pd.DataFrame
    dates: pd.DataFrame  # feed, column, first, last, missing, unparseable
    merged: int = 0


class _Reasons:
    """Per row, the reasons it cannot be ingested (several joined with '; ')."""

    def __init__(self, index: pd.Index) -> None:
        self.text = pd.Series("", index=index, dtype=object)

    def add(self, failing: pd.Series, reason: pd.Series | str) -> None:
        failing = failing.fillna(False).astype(bool)
        if not failing.any():
            return
        why = reason[failing] if isinstance(reason, pd.Series) else reason
        current = self.text[failing]
        self.text[failing] = np.where(current == "", why, current + "; " + why)

    @property
    def bad(self) -> pd.Series:
        return self.text != ""


def _mapped(
    cells: pd.Series, key: str, column: str, feed: Feed, reasons: _Reasons, excluded: pd.Series
) -> tuple[pd.Series, pd.Series, dict[str, int]]:
    """A column through its value map (or the vocabulary as is): mapped values, excluded mask, counts."""
    out_excluded = excluded | cells.isin(feed.exclude.get(key, [])).fillna(False)
    counts = {f"{column} '{v}'": int(n) for v, n in cells[cells.isin(feed.exclude.get(key, []))].value_counts().items()}
    if key in feed.values:
        mapped = cells.map(feed.values[key]).astype("string")
    elif key in VOCABULARY:
        mapped = cells.where(cells.isin(VOCABULARY[key]))
    else:
        return cells, out_excluded, counts
    unmapped = cells.notna() & mapped.isna() & ~cells.isin(feed.exclude.get(key, []))
    reasons.add(unmapped, f"unmapped {column} value '" + cells.astype(object).astype(str) + "'")
    return mapped, out_excluded, counts


def _joined(frame: pd.DataFrame, feed: Feed, frames: dict[str, pd.DataFrame], reasons: _Reasons) -> pd.DataFrame:
    if feed.join is None:
        return frame
    other = frames[feed.join.source].drop_duplicates(subset=[feed.join.column], keep="first")
    other = other.rename(columns={c: f"{c}.{feed.join.source}" for c in other.columns if c in frame.columns})
    other = other.rename(columns={f"{feed.join.column}.{feed.join.source}": feed.join.column})
    joined = frame.merge(other, on=feed.join.column, how="left", indicator=True)
    joined.index = frame.index
    reasons.add(joined["_merge"] != "both", f"no {feed.join.column} match in {feed.join.source}")
    return joined.drop(columns="_merge")


def transform_feed(
    table: str,
    position: int,
    feed: Feed,
    frames: dict[str, pd.DataFrame],
    date_formats: list[str],
    harm: dict[str, float],
    key: bytes,
) -> FeedResult:
    """Map one feed's source rows into contract rows; each row ingested, excluded or quarantined with why."""
    label = f"{table}[{position}]"
    source = frames[feed.source]
    reasons = _Reasons(source.index)
    rows = _joined(source, feed, frames, reasons)
    excluded = pd.Series(False, index=source.index)
    excluded_counts: dict[str, int] = {}
    out: dict[str, pd.Series] = {}
    dates: list[dict] = []

    def convert(key_name: str, column: str) -> pd.Series:
        nonlocal excluded
        cells = rows[column]
        if key_name in DATE_COLUMNS:
            parsed = parse_dates(cells, date_formats)
            unparseable = cells.notna() & parsed.isna()
            identity = key_name == "birth_date"
            if not identity:  # a birth date no format reads is missing: the person's other records may hold it
                reasons.add(unparseable, f"unparseable date in {column}")
            shown = parsed[:0] if identity else parsed  # a birth date's range is personal data
            dates.append(
                {
                    "feed": label,
                    "column": column,
                    "first": shown.min(),
                    "last": shown.max(),
                    "missing": int(cells.isna().sum()),
                    "unparseable": int(unparseable.sum()),
                }
            )
            return parsed
        mapped, excluded, counts = _mapped(cells, key_name, column, feed, reasons, excluded)
        excluded_counts.update(counts)
        return mapped

    for name, column in feed.columns.items():
        values = convert(name, column)
        out[name] = values.dt.strftime("%Y-%m-%d").astype("string") if name in DATE_COLUMNS else values
    for name, value in feed.constants.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out[name] = pd.Series(text, index=source.index, dtype="string")
    if feed.harm_code:
        codes = rows[feed.harm_code]
        weights = codes.map(harm)
        reasons.add(
            codes.notna() & weights.isna(), "no harm weight for code '" + codes.astype(object).astype(str) + "'"
        )
        reasons.add(codes.isna(), f"no offence code in {feed.harm_code}")
        out["harm"] = weights.astype("string")
    if feed.record_id:
        parts = rows[feed.record_id]
        reasons.add(parts.isna().any(axis=1), f"no record id in {', '.join(feed.record_id)}")
        cells = parts.fillna("").astype(str)
        joined = cells.iloc[:, 0]
        for column in cells.columns[1:]:  # column by column: a source with no rows gives no rows, not a frame
            joined = joined + "|" + cells[column]
        out[f"{table.removesuffix('s')}_id"] = record_ids(f"{feed.source}:" + joined, key, _ID_PREFIX[table])
    if feed.person is not None:
        p = feed.person
        ids = rows[p.id]
        reasons.add(ids.isna(), f"no person id in {p.id}")
        out["source"] = pd.Series(feed.source, index=source.index, dtype="string")
        out["source_id"] = ids
        if p.full_name is not None:
            out["first_name"], out["last_name"] = split_full_name(rows[p.full_name])
        else:
            out["first_name"], out["last_name"] = rows[p.first_name], rows[p.last_name]
        for attribute in PERSON_ATTRIBUTES:
            column = getattr(p, attribute)
            out[attribute] = convert(attribute, column) if column is not None else pd.Series(pd.NA, index=source.index)
    frame = pd.DataFrame(out, index=source.index)
    frame.insert(0, "_row", np.arange(1, len(source) + 1))
    keep = ~reasons.bad & ~excluded
    bad = reasons.bad & ~excluded
    quarantine = source[bad].copy()
    quarantine.insert(0, "row", np.flatnonzero(bad.to_numpy()) + 1)
    quarantine["reason"] = reasons.text[bad]
    return FeedResult(
        table=table,
        feed=label,
        source=feed.source,
        read=len(source),
        rows=frame[keep].reset_index(drop=True),
        quarantine=quarantine.reset_index(drop=True),
        excluded=excluded_counts,
        unmapped=_unmapped(label, quarantine["reason"]),
        dates=pd.DataFrame(dates, columns=["feed", "column", "first", "last", "missing", "unparseable"]),
    )


def _unmapped(feed: str, reasons: pd.Series) -> pd.DataFrame:
    """The unmapped values among the reasons, with their counts (most frequent first)."""
    found = reasons.str.split("; ").explode().str.extract(r"^unmapped (.+) value '(.*)'$").dropna()
    found.columns = ["column", "value"]
    counts = found.groupby(["column", "value"]).size().rename("rows").reset_index()
    counts.insert(0, "feed", feed)
    return counts.sort_values(["rows", "column", "value"], ascending=[False, True, True]).reset_index(drop=True)


def reason_counts(reasons: pd.Series) -> dict[str, int]:
    """Rows per reason, a reason's quoted value left out ('unmapped Code value' for every code)."""
    split = reasons.str.split("; ").explode().map(lambda r: _QUOTED.sub("", r))
    return {str(k): int(v) for k, v in split.value_counts().sort_index().items()}


def _most_frequent(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Per `keys`, the most frequent non-missing value of `column` (ties: the smallest)."""
    counts = frame.dropna(subset=[column]).groupby([*keys, column], observed=True).size().rename("_n").reset_index()
    counts = counts.sort_values([*keys, "_n", column], ascending=[True] * len(keys) + [False, True])
    return counts.drop_duplicates(keys)[[*keys, column]]


def person_records(results: list[FeedResult]) -> pd.DataFrame:
    """One row per distinct (source, source_id) of the ingested rows: each field its most frequent value."""
    rows = [r.rows[list(RECORD_COLUMNS)] for r in results if "source_id" in r.rows.columns]
    every = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(RECORD_COLUMNS))
    keys = ["source", "source_id"]
    records = every[keys].drop_duplicates().reset_index(drop=True)
    for column in RECORD_COLUMNS[2:]:
        records = records.merge(_most_frequent(every, keys, column), on=keys, how="left")
    records["birth_date"] = pd.to_datetime(records["birth_date"])
    return records.astype({c: "string" for c in RECORD_COLUMNS if c != "birth_date"})


def reconcile_people(records: pd.DataFrame, clusters: pd.DataFrame, rules: PeopleRules) -> pd.DataFrame:
    """Per cluster, each attribute from the records of its most trusted source holding one (the declared
    precedence; a source not named comes after those named), the most frequent value among them."""
    linked = records.merge(clusters, on=["source", "source_id"], how="inner")
    people = linked[["cluster_key"]].drop_duplicates().reset_index(drop=True)
    for attribute in PERSON_ATTRIBUTES:
        order = rules.precedence.get(attribute, [])
        cand = linked.dropna(subset=[attribute])[["cluster_key", "source", attribute]].copy()
        cand["_rank"] = cand["source"].map({s: i for i, s in enumerate(order)}).fillna(len(order))
        cand = cand[cand["_rank"] == cand.groupby("cluster_key")["_rank"].transform("min")]
        people = people.merge(_most_frequent(cand, ["cluster_key"], attribute), on="cluster_key", how="left")
    return people


@dataclass(frozen=True)
class Contract:
    """The valid contract tables, the feeds with every row accounted for, the people not written (cluster_key,
    reason: private) and the link table (every source record, its cluster and pseudonym: private)."""

    tables: dict[str, pd.DataFrame]
    feeds: list[FeedResult]
    people_quarantine: pd.DataFrame
    link_table: pd.DataFrame
    report: ValidationReport


def _to_quarantine(
    result: FeedResult, frames: dict[str, pd.DataFrame], rows: pd.DataFrame, reason: pd.Series
) -> FeedResult:
    """Move ingested `rows` (with `_row`) of a feed to its quarantine with `reason`."""
    if not len(rows):
        return result
    source = frames[result.source]
    moved = source.iloc[rows["_row"].to_numpy() - 1].copy()
    moved.insert(0, "row", rows["_row"].to_numpy())
    moved["reason"] = reason.to_numpy()
    kept = result.rows[~result.rows["_row"].isin(rows["_row"])].reset_index(drop=True)
    quarantine = pd.concat([result.quarantine, moved], ignore_index=True).sort_values("row").reset_index(drop=True)
    return replace(result, rows=kept, quarantine=quarantine)


def _people_table(people: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(contract people rows as text, quarantined clusters with reason)."""
    no_birth = people["birth_date"].isna()
    no_area = people["area_id"].isna()
    why = pd.Series("", index=people.index, dtype=object)
    why[no_area] = "no home area in any linked record"
    why[no_birth] = "no birth date in any linked record"
    bad = no_birth | no_area
    birth = pd.to_datetime(people["birth_date"]).dt.to_period("M").dt.to_timestamp()
    table = pd.DataFrame(
        {
            "person_id": people["person_id"],
            "area_id": people["area_id"],
            "birth_date": birth.dt.strftime("%Y-%m-%d").astype("string"),
            "sex": people["sex"].fillna("U"),
            "ethnicity": people["ethnicity"].fillna("Unknown"),
        }
    )
    quarantined = people.loc[bad, ["cluster_key", "person_id"]].assign(reason=why[bad])
    return table[~bad].reset_index(drop=True), quarantined.reset_index(drop=True)


def _schema_columns(schema: TableSchema, frames: list[pd.DataFrame]) -> list[str]:
    present = set().union(*(f.columns for f in frames)) if frames else set()
    return [c.name for c in schema.columns if c.name in present]


def build_contract(
    results: list[FeedResult],
    frames: dict[str, pd.DataFrame],
    records: pd.DataFrame,
    linkage: Linkage,
    key: bytes,
    rules: PeopleRules,
    today: date,
) -> Contract:
    """The contract tables keyed by pseudonym, validated; every rejected row back in its feed's quarantine."""
    clusters = linkage.clusters.assign(person_id=pseudonymise(linkage.clusters["cluster_key"], key))
    people = reconcile_people(records, clusters[["source", "source_id", "cluster_key"]], rules)
    people = people.merge(clusters[["cluster_key", "person_id"]].drop_duplicates(), on="cluster_key")
    people_rows, people_quarantine = _people_table(people)
    ids = clusters[["source", "source_id", "person_id"]]
    feeds: list[FeedResult] = []
    for result in results:
        if result.table == "areas":
            feeds.append(result)
            continue
        rows = result.rows.merge(ids, on=["source", "source_id"], how="left")
        rows.index = result.rows.index
        lost = rows["person_id"].isin(people_quarantine["person_id"])
        why = rows.loc[lost, "person_id"].map(dict(zip(people_quarantine["person_id"], people_quarantine["reason"])))
        result = _to_quarantine(result, frames, rows[lost], "person not written: " + why)
        rows = rows[~lost].reset_index(drop=True)
        key_columns = list(SCHEMAS[result.table].key)
        merged = rows.duplicated(subset=key_columns)
        feeds.append(replace(result, rows=rows[~merged].reset_index(drop=True), merged=int(merged.sum())))
    raw: dict[str, pd.DataFrame] = {"people": people_rows}
    for table in ("areas", "incidents", "interventions"):
        parts = [f.rows.assign(_feed=f.feed) for f in feeds if f.table == table]
        columns = _schema_columns(SCHEMAS[table], parts)
        raw[table] = (
            pd.concat([p.reindex(columns=[*columns, "_feed", "_row"]) for p in parts], ignore_index=True)
            if parts
            else pd.DataFrame({c.name: pd.Series(dtype="string") for c in SCHEMAS[table].columns if c.required})
        )
    valid, rejected, report = validate_tables(raw, today)
    for table in ("areas", "incidents", "interventions"):
        bad = rejected[table]
        if not len(bad):
            continue
        for i, f in enumerate(feeds):
            mine = bad[bad["_feed"] == f.feed]
            feeds[i] = _to_quarantine(f, frames, mine, "contract: " + mine["reason"])
    rejected_people = rejected["people"]
    if len(rejected_people):
        extra = people.loc[people["person_id"].isin(rejected_people["person_id"]), ["cluster_key", "person_id"]]
        extra = extra.merge(rejected_people[["person_id", "reason"]], on="person_id")
        extra["reason"] = "contract: " + extra["reason"]
        people_quarantine = pd.concat([people_quarantine, extra], ignore_index=True)
    link = clusters.merge(records, on=["source", "source_id"], how="left")
    return Contract(valid, feeds, people_quarantine, link, report)
