"""Linking people across agencies with Splink on DuckDB: one cluster per person, whatever their source ids.

Records (the person-records seam: `source, source_id, first_name, last_name, birth_date, sex, area_id`) are
normalised here (case, accents, punctuation; a swapped forename and surname are caught by the name comparison's
reversed level and by blocking on the sorted name pair; a single typo in a short name by its one-edit level),
then scored by a Fellegi-Sunter model whose u
probabilities come from random sampling (seeded, so deterministic), whose m probabilities come from
expectation maximisation on the declared training blocking rules (the date of birth's are declared), and whose
prior comes from the pairs the deterministic rules find over their declared recall. Pairs at or above the partnership's
match-probability threshold are joined into clusters (connected components). A cluster's key is the smallest
`source:source_id` among its records, so it stays the same month to month while those records persist.
"""

from __future__ import annotations

import logging
import tempfile
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import duckdb
    from splink import DuckDBAPI
    from splink.internals.comparison_creator import ComparisonCreator

#: fewer records than this are too few to estimate a model from: each is its own cluster
MIN_RECORDS = 3
RECORD_COLUMNS = ("source", "source_id", "first_name", "last_name", "birth_date", "sex", "area_id")


class NamesComparison(BaseModel):
    """Forename and surname together: exact, swapped, Jaro-Winkler on both at each threshold, one name exact and
    the other one edit away (`one_edit`), surname exact, forename exact, else.

    `term_frequencies`: the full name's frequency adjusts the exact level and (Splink's adjustment of a fuzzy
    level: the commoner side's frequency against the exact level's average) the swapped and Jaro-Winkler
    levels, so "Gary Jones" against "Jones Gary" or "Gray Jones" counts as little as "Gary Jones" against
    itself; the one-edit level is not adjusted (its forename or surname exact is what the typo is measured
    against). `one_edit`: a single typo (a letter dropped, doubled, changed or two swapped: Damerau-Levenshtein
    1) in one name while the other is exact, the typo Jaro-Winkler misses in a short name ("King" and "Kiig":
    0.83).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["names"] = "names"
    jaro_winkler: list[float] = [0.92, 0.88]
    term_frequencies: bool = True
    one_edit: bool = True


class BirthDateComparison(BaseModel):
    """Exact, one typo (Levenshtein 1 on the ISO date), then within a month, a year, ten years, else.

    Its m probabilities are declared, not estimated: with names, sex and area as the only other fields,
    expectation maximisation on name-blocked pairs cannot tell a namesake from the same person, and the
    date of birth is what tells them apart.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["birth_date"] = "birth_date"
    m_probabilities: list[float] = Field(default=[0.95, 0.02, 0.01, 0.01, 0.005, 0.005], min_length=6, max_length=6)


class ExactComparison(BaseModel):
    """Equal or not (a missing value on either side is neutral).

    `source` is the feed a record comes from: an agency keeps most people under one id of its own, so two of
    its records are less often one person than a record of each of two agencies; how much less, EM estimates
    from the records (a partnership whose police hold many people twice gets a small penalty).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["exact"] = "exact"
    column: Literal["sex", "area_id", "source"]


Comparison = Annotated[NamesComparison | BirthDateComparison | ExactComparison, Field(discriminator="kind")]

#: candidate pairs: a person is missed only if every rule misses them (columns as `normalise_records` makes them).
#: Every rule narrows by more than a name, so the pairs grow about linearly with the records, not quadratically.
DEFAULT_BLOCKING = [
    "l.birth_date = r.birth_date and l.first_initial = r.first_initial",
    "l.birth_date = r.birth_date and l.last_initial = r.last_initial",
    "l.name_key = r.name_key and l.area_id = r.area_id",
    "l.name_key = r.name_key and l.birth_year = r.birth_year",
    "l.last_name = r.last_name and l.area_id = r.area_id",
    "l.first_name = r.first_name and l.area_id = r.area_id",
    "l.last_prefix = r.last_prefix and l.birth_year = r.birth_year and l.first_initial = r.first_initial",
]
#: expectation maximisation: each rule fixes the comparisons on its columns and estimates the m probabilities of
#: the others (the date of birth's are declared: keep it in every rule)
DEFAULT_TRAINING_BLOCKING = [
    "l.full_name = r.full_name and l.birth_date = r.birth_date",
    "l.birth_date = r.birth_date and l.sex = r.sex and l.area_id = r.area_id",
]
DEFAULT_COMPARISONS: list[Comparison] = [
    NamesComparison(),
    BirthDateComparison(),
    ExactComparison(column="sex"),
    ExactComparison(column="area_id"),
    ExactComparison(column="source"),
]


class LinkageSettings(BaseModel):
    """The mapping's `linkage:` section."""

    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(0.7, gt=0.0, lt=1.0)
    blocking: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKING), min_length=1)
    training_blocking: list[str] = Field(default_factory=lambda: list(DEFAULT_TRAINING_BLOCKING), min_length=1)
    comparisons: list[Comparison] = Field(default_factory=lambda: list(DEFAULT_COMPARISONS), min_length=1)
    #: the prior: the share of matches among all pairs, from the pairs that agree on every identifying field
    #: and the declared recall of that rule
    deterministic_rules: list[str] = Field(
        default_factory=lambda: [
            "l.first_name = r.first_name and l.last_name = r.last_name and l.birth_date = r.birth_date"
        ]
    )
    deterministic_recall: float = Field(0.7, gt=0.0, le=1.0)
    max_pairs_for_u: int = Field(5_000_000, gt=0)
    review_pairs: int = Field(50, ge=0)
    seed: int = 0
    #: DuckDB's memory before it spills to a private temporary folder (the scored pairs of full Wales need more)
    memory_limit: str = Field("4GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$")


@dataclass(frozen=True)
class Linkage:
    """Clusters and the diagnostics the linkage report shows.

    `near_threshold` names records by `source:source_id` only, but those ids are personal data: it belongs in
    the private link folder, never in a shared report.
    """

    clusters: pd.DataFrame  # source, source_id, cluster_key
    match_weights: pd.DataFrame  # weight (bin floor, width 1), pairs
    cluster_sizes: pd.DataFrame  # size, clusters
    near_threshold: pd.DataFrame  # record_l, record_r, match_weight, match_probability
    pairs_scored: int
    threshold: float


def _plain(text: object) -> str | None:
    """Lower case ASCII letters only (accents folded, spaces, hyphens and apostrophes dropped); None if empty."""
    if not isinstance(text, str):
        return None
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    letters = "".join(c for c in folded if c.isalpha())
    return letters or None


def _first_token(text: object) -> object:
    return text.split()[0] if isinstance(text, str) and text.split() else None


def normalise_records(records: pd.DataFrame) -> pd.DataFrame:
    """The linkage input: one row per (source, source_id), names normalised, blocking keys derived."""
    missing = set(RECORD_COLUMNS) - set(records.columns)
    if missing:
        raise ValueError(f"person records lack {sorted(missing)}")
    if records["source"].astype(str).str.contains(":", regex=False).any():
        raise ValueError("a source name contains ':', which separates it from the source id in a cluster key")
    out = records.loc[:, list(RECORD_COLUMNS)].drop_duplicates(["source", "source_id"], keep="first")
    unique_id = out["source"].astype(str) + ":" + out["source_id"].astype(str)
    first = out["first_name"].map(_first_token).map(_plain)
    last = out["last_name"].map(_plain)
    birth = pd.to_datetime(out["birth_date"], errors="coerce")
    pair = pd.DataFrame({"a": first, "b": last})
    low = pair.min(axis=1, skipna=False)
    high = pair.max(axis=1, skipna=False)
    frame = pd.DataFrame(
        {
            "unique_id": unique_id.to_numpy(),
            "source": out["source"].astype(str).to_numpy(),
            "first_name": first.to_numpy(),
            "last_name": last.to_numpy(),
            "full_name": (first + " " + last).to_numpy(),
            "name_key": (low + " " + high).to_numpy(),
            "first_initial": first.str[:1].to_numpy(),
            "last_initial": last.str[:1].to_numpy(),
            "last_prefix": last.str[:3].to_numpy(),
            "birth_date": birth.dt.strftime("%Y-%m-%d").to_numpy(),
            "birth_year": birth.dt.year.astype("Int32").to_numpy(),
            "sex": out["sex"].astype("string").to_numpy(),
            "area_id": out["area_id"].astype("string").to_numpy(),
        }
    )
    return frame.astype({c: "string" for c in frame.columns if c != "birth_year"})


def _names(spec: NamesComparison) -> ComparisonCreator:
    """Splink's forename-surname levels with the full name's frequency on its fuzzy levels too, and a level
    for one typo in one name (`NamesComparison`), as one `CustomComparison`."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    first, last = "first_name", "last_name"

    def by_name(level):
        return level.configure(tf_adjustment_column="full_name") if spec.term_frequencies else level

    exact = (
        cll.ExactMatchLevel("full_name")
        if spec.term_frequencies
        else cll.And(cll.ExactMatchLevel(first), cll.ExactMatchLevel(last))
    )
    levels = [
        cll.And(cll.NullLevel(first), cll.NullLevel(last)),
        by_name(exact),
        by_name(cll.ColumnsReversedLevel(first, last, symmetrical=True)),
        *(by_name(cll.And(cll.JaroWinklerLevel(first, t), cll.JaroWinklerLevel(last, t))) for t in spec.jaro_winkler),
    ]
    if spec.one_edit:
        levels.append(
            cll.Or(
                cll.And(cll.ExactMatchLevel(first), cll.DamerauLevenshteinLevel(last, 1)),
                cll.And(cll.DamerauLevenshteinLevel(first, 1), cll.ExactMatchLevel(last)),
            ).configure(label_for_charts="One name exact, the other one edit away")
        )
    levels += [
        cll.ExactMatchLevel(last).configure(tf_adjustment_column=last),
        cll.ExactMatchLevel(first).configure(tf_adjustment_column=first),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(levels, output_column_name="first_name_last_name")


def _comparison(spec: Comparison) -> ComparisonCreator:
    import splink.comparison_library as cl

    if isinstance(spec, NamesComparison):
        return _names(spec)
    if isinstance(spec, BirthDateComparison):
        return cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d").configure(
            m_probabilities=spec.m_probabilities
        )
    return cl.ExactMatch(spec.column)


def _histogram(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    return con.sql(
        f"select cast(floor(match_weight) as integer) as weight, count(*) as pairs from {table} group by 1 order by 1"
    ).df()


def _prior(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, settings: LinkageSettings) -> float:
    """The share of matches among all pairs: the pairs the deterministic rules find, over their declared recall
    (at least one match expected, at most half the pairs)."""
    con.register("records_for_prior", frame)
    union = " union ".join(
        "select l.unique_id as a, r.unique_id as b from records_for_prior l join records_for_prior r "
        f"on l.unique_id < r.unique_id and ({rule})"
        for rule in settings.deterministic_rules
    )
    observed = con.sql(f"select count(*) from ({union})").fetchall()[0][0]
    con.unregister("records_for_prior")
    total = len(frame) * (len(frame) - 1) / 2
    return min(max(observed / settings.deterministic_recall, 1.0) / total, 0.5)


def _unlinked(frame: pd.DataFrame, settings: LinkageSettings) -> Linkage:
    """Too few records to estimate a model: each is its own cluster, and no pair was scored."""
    keys = frame["unique_id"].str.split(":", n=1, expand=True).reindex(columns=[0, 1])
    clusters = pd.DataFrame({"source": keys[0], "source_id": keys[1], "cluster_key": frame["unique_id"]})
    return Linkage(
        clusters=clusters.astype("string").reset_index(drop=True),
        match_weights=pd.DataFrame({"weight": pd.Series(dtype="int32"), "pairs": pd.Series(dtype="int64")}),
        cluster_sizes=pd.DataFrame({"size": [1] * (len(frame) > 0), "clusters": [len(frame)] * (len(frame) > 0)}),
        near_threshold=pd.DataFrame(columns=["record_l", "record_r", "match_weight", "match_probability"]),
        pairs_scored=0,
        threshold=settings.threshold,
    )


class LinkageError(ValueError):
    """The records could not be linked as the settings declare (one line, for the command line)."""


def link_people(records: pd.DataFrame, settings: LinkageSettings) -> Linkage:
    """Cluster the records that are the same person (deterministic for the same records and settings)."""
    import duckdb
    from splink import DuckDBAPI
    from splink.internals.exceptions import SplinkException

    frame = normalise_records(records)
    if len(frame) < MIN_RECORDS:
        return _unlinked(frame, settings)
    with tempfile.TemporaryDirectory(prefix="riskloop-linkage-") as spill:
        con = duckdb.connect(config={"memory_limit": settings.memory_limit, "temp_directory": spill})
        try:
            return _link(frame, settings, DuckDBAPI(con))
        except SplinkException as exc:  # e.g. a handful of records leave no comparison level to estimate
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = next(
                (line.removeprefix("Error was: ") for line in lines if line.startswith("Error was")), lines[0]
            )
            raise LinkageError(
                f"the linkage could not be estimated from {len(frame):,} person records ({reason}); "
                "an extract this small needs more records, or its people linked by hand"
            ) from exc
        finally:
            con.close()


def _link(frame: pd.DataFrame, settings: LinkageSettings, db_api: DuckDBAPI) -> Linkage:
    """Train, score and cluster on `db_api`'s connection."""
    from splink import Linker, SettingsCreator
    from splink.internals.exceptions import EMTrainingException

    creator = SettingsCreator(
        link_type="dedupe_only",
        probability_two_random_records_match=_prior(db_api.duckdb_con, frame, settings),
        unique_id_column_name="unique_id",
        comparisons=[_comparison(c) for c in settings.comparisons],
        blocking_rules_to_generate_predictions=[{"blocking_rule": rule} for rule in settings.blocking],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register(frame, dataset_display_name="people"), creator, log_level=logging.ERROR)
    linker.training.estimate_u_using_random_sampling(max_pairs=settings.max_pairs_for_u, seed=settings.seed)
    for rule in settings.training_blocking:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except EMTrainingException:  # the rule finds no pairs (a small extract): it estimates nothing
            continue
    predictions = linker.inference.predict()
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=settings.threshold
    )
    con = db_api.duckdb_con
    pairs = predictions.physical_name
    members = con.sql(
        f"select unique_id, min(unique_id) over (partition by cluster_id) as cluster_key "
        f"from {clustered.physical_name} order by unique_id"
    ).df()
    keys = members["unique_id"].str.split(":", n=1, expand=True)
    clusters = pd.DataFrame({"source": keys[0], "source_id": keys[1], "cluster_key": members["cluster_key"]})
    sizes = clusters.groupby("cluster_key").size().value_counts().sort_index()
    near = con.sql(
        f"select unique_id_l as record_l, unique_id_r as record_r, match_weight, match_probability from {pairs} "
        f"order by abs(match_probability - {settings.threshold}), unique_id_l, unique_id_r "
        f"limit {settings.review_pairs}"
    ).df()
    scored = con.sql(f"select count(*) from {pairs}").fetchall()[0][0]
    return Linkage(
        clusters=clusters.astype("string"),
        match_weights=_histogram(con, pairs),
        cluster_sizes=pd.DataFrame({"size": sizes.index.astype(int), "clusters": sizes.to_numpy(dtype=int)}),
        near_threshold=near,
        pairs_scored=int(scored),
        threshold=settings.threshold,
    )
