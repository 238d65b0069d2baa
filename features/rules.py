"""The data contract's rules, declared once: every rule a row can fail, as data.

Each `Rule` names its table, column(s), kind and the exact reason a failing row is quarantined with.
The types, vocabularies and ranges come from the columns of `features.schema`, the keys (duplicates)
and references from its tables, and the cross-field rules are listed in `CROSS_FIELD`. `RULES` holds
them all, each table's in the order a row's reasons are given. Both engines evaluate this declaration
and nothing else: `features.validate` on pandas, `riskloop.spark.contract` on Spark.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from riskloop.features.schema import CONTRACT, INCIDENTS, Column, Reference, TableSchema

RuleKind = Literal[
    "type",
    "finite",
    "missing",
    "allowed",
    "minimum",
    "not_future",
    "earliest",
    "max_age",
    "duplicate",
    "reference",
    "before",
]
#: The kinds that read one cell of a row, parsed to its column's kind.
CELL_KINDS: tuple[RuleKind, ...] = (
    "type",
    "finite",
    "missing",
    "allowed",
    "minimum",
    "not_future",
    "earliest",
    "max_age",
)
VALUE = "{value}"  # in a reason: the failing cell as read (for a reference, the value not found)
TODAY = "{today}"  # in a reason: the day the data set is validated
QUOTED = 100  # a reason quotes at most this many characters of a value, and then says how long it was


@dataclass(frozen=True)
class Rule:
    """One rule of the contract. A row fails it when

    - `type`: its cell does not parse as the column's kind; `finite`: its number is inf or nan;
    - `missing`: its cell is empty; `allowed`: its value is not one of `allowed`;
    - `minimum`: its value is below `limit`; `earliest`: its date is before `limit`;
    - `not_future`: its date is after today; `max_age`: its date is more than `limit` years before today;
    - `duplicate`: its key (`columns`) is not null and on more than one row;
    - `reference`: its value is not null and not a key of a valid row of `reference.table`;
    - `before`: `columns[0]` is before `columns[1]`, of the same row, or with a `reference` of the valid
      parent row it points to (a row whose parent has no valid row fails the reference rule instead).
    """

    table: str
    kind: RuleKind
    columns: tuple[str, ...]
    reason: str
    allowed: tuple[str, ...] = ()
    limit: float | date | None = None
    reference: Reference | None = None

    @property
    def label(self) -> str:
        """The name the validation report counts the rule's failures under (the reason up to its colon)."""
        return self.reason.split(":")[0]

    @property
    def target(self) -> Reference:
        """The reference a `reference` rule (or a `before` rule across tables) follows."""
        if self.reference is None:
            raise ValueError(f"{self.table}: the '{self.kind}' rule '{self.label}' follows no reference")
        return self.reference

    @property
    def row_local(self) -> bool:
        """Decided by the row alone (a batch of rows is enough to evaluate it)."""
        return self.kind in CELL_KINDS or (self.kind == "before" and self.reference is None)

    @property
    def own_columns(self) -> tuple[str, ...]:
        """The columns of the rule's own table that it reads."""
        if self.kind == "before" and self.reference is not None:
            return self.columns[0], self.reference.column
        return self.columns

    @property
    def names_value(self) -> bool:
        """The reason quotes the failing value."""
        return VALUE in self.reason

    def applies(self, columns: Iterable[str]) -> bool:
        """A table without one of the rule's (optional) columns has nothing to check."""
        return set(self.own_columns) <= set(columns)

    def reason_parts(self, today: date) -> tuple[str, str]:
        """(text before, text after) the failing value in the reason; all of it before when it names none."""
        before, _, after = self.reason.replace(TODAY, today.isoformat()).partition(VALUE)
        return before, after

    def cut_parts(self, today: date) -> tuple[str, str]:
        """(text between a value's first `QUOTED` characters and its length, text after its length) in the
        reason of a longer value: `'aaaa…' (1,048,576 characters) is not one of ...`."""
        after = self.reason_parts(today)[1]
        quote = "'" if after.startswith("'") else ""
        return f"…{quote} (", f" characters){after[len(quote) :]}"


def column_rules(table: str, column: Column) -> tuple[Rule, ...]:
    """A column's own rules: it parses, is present, allowed, in range, a plausible date."""
    name = column.name
    checks: list[tuple[RuleKind, str, dict]] = []
    if column.kind != "string":
        checks.append(("type", f"not a valid {column.kind} ('{VALUE}')", {}))
    if column.kind in ("int", "float"):
        checks.append(("finite", f"not a finite number ('{VALUE}')", {}))
    if not column.nullable:
        checks.append(("missing", "missing", {}))
    if column.allowed is not None:
        checks.append(("allowed", f"'{VALUE}' is not one of {', '.join(column.allowed)}", {"allowed": column.allowed}))
    if column.minimum is not None:
        checks.append(("minimum", f"{VALUE} is below {column.minimum:g}", {"limit": column.minimum}))
    if column.not_future:
        checks.append(("not_future", f"{VALUE} is after today ({TODAY})", {}))
    if column.earliest is not None:
        checks.append(("earliest", f"{VALUE} is before {column.earliest.isoformat()}", {"limit": column.earliest}))
    if column.max_age_years is not None:
        checks.append(
            (
                "max_age",
                f"{VALUE} gives an age over {column.max_age_years} years today ({TODAY})",
                {"limit": column.max_age_years},
            )
        )
    return tuple(Rule(table, kind, (name,), f"{name}: {reason}", **bounds) for kind, reason, bounds in checks)


def schema_rules(schema: TableSchema) -> tuple[Rule, ...]:
    """A table's column rules (in column order), its key rule and its reference rules."""
    key = Rule(
        schema.name, "duplicate", schema.key, f"duplicate {'/'.join(schema.key)}: the same key is on more than one row"
    )
    references = tuple(
        Rule(
            schema.name,
            "reference",
            (ref.column,),
            f"{ref.column}: '{VALUE}' not found in valid {ref.table}",
            reference=ref,
        )
        for ref in schema.references
    )
    return (*(rule for column in schema.columns for rule in column_rules(schema.name, column)), key, *references)


#: The rules across fields: a date before another of its row, or of the parent row it refers to.
CROSS_FIELD: tuple[Rule, ...] = (
    Rule(
        "incidents",
        "before",
        ("date", "birth_date"),
        "date: before the person's birth_date",
        reference=INCIDENTS.references[0],
    ),
    Rule("interventions", "before", ("end_date", "start_date"), "end_date: before start_date"),
)

#: The whole declaration: each table's rules in the order a row's reasons are given.
RULES: tuple[Rule, ...] = tuple(
    rule
    for schema in CONTRACT
    for rule in (*schema_rules(schema), *(cross for cross in CROSS_FIELD if cross.table == schema.name))
)


def table_rules(table: str) -> tuple[Rule, ...]:
    """The declaration's rules of one table, in the order a row's reasons are given."""
    return tuple(rule for rule in RULES if rule.table == table)
