"""Per-column rules made ready for one table, and the scrubbing of its rows (pure).

    plan = TablePlan.build("customers", ("id", "email", "note"), rules, masks)
    plan.scrub_row(("42", "jane@example.com", "call +1 415 555 0132"))

A column with a rule is masked by it; every other text column is free text: whatever the detectors
(`trustproof.data.detect`) find in it is replaced, so a column nobody wrote a rule for never leaks
an email or a card number. `keep` is the only way to pass a value through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from trustproof.data import detect
from trustproof.data.errors import DataError
from trustproof.data.masks import Masks
from trustproof.spec.data import DataRule

Value = str | None
Mask = Callable[[str, Sequence[Value]], str]


def bare(table: str) -> str:
    """``public.customers`` -> ``customers`` (other schemas stay qualified)."""
    return table[len("public.") :] if table.startswith("public.") else table


def rules_for(rules: Mapping[str, DataRule], table: str) -> dict[str, DataRule]:
    """The rules of `table` (written ``table.column`` or ``schema.table.column``), by column."""
    name = bare(table)
    out: dict[str, DataRule] = {}
    for key, rule in rules.items():
        owner, _, column = key.rpartition(".")
        if owner and bare(owner) == name:
            out[column] = rule
    return out


@dataclass(frozen=True)
class TablePlan:
    """How each column of one table is masked; `None` = free text (detectors)."""

    table: str
    columns: tuple[str, ...]
    masks: tuple[Mask | None, ...]
    kinds: tuple[str | None, ...] = ()  # each column's rule kind; None = free text

    @classmethod
    def build(
        cls, table: str, columns: Sequence[str], rules: Mapping[str, DataRule], masks: Masks
    ) -> TablePlan:
        mine = rules_for(rules, table)
        unknown = sorted(set(mine) - set(columns))
        if unknown:
            raise DataError(
                f"data.rules names column {bare(table)}.{unknown[0]}, which the sample of table "
                f"{bare(table)!r} does not have (it has: {', '.join(columns)})",
                "fix the column name in the rule, or the sample's header",
            )
        made = tuple(
            _mask(table, columns, c, mine[c], masks) if c in mine else None for c in columns
        )
        kinds = tuple(mine[c].kind if c in mine else None for c in columns)
        return cls(table, tuple(columns), made, kinds)

    def scrub_row(self, row: Sequence[Value], free_text: Callable[[str], str]) -> list[Value]:
        if len(row) != len(self.columns):
            raise DataError(
                f"a row of table {bare(self.table)!r} has {len(row)} fields, the header "
                f"{len(self.columns)}",
                "every row needs one field per column",
            )
        out: list[Value] = []
        for value, mask in zip(row, self.masks, strict=True):
            if value is None or value == "":
                out.append(value)
            elif mask is None:
                out.append(free_text(value))
            else:
                out.append(mask(value, row))
        return out


def _keep(value: str, row: Sequence[Value]) -> str:
    return value


def _mask(table: str, columns: Sequence[str], column: str, rule: DataRule, masks: Masks) -> Mask:
    kind = rule.kind
    if kind == "keep":
        return _keep
    if kind == "email":
        return lambda v, _: masks.email(v)
    if kind == "phone":
        return lambda v, _: masks.phone(v)
    if kind == "card":
        return lambda v, _: masks.card(v)
    if kind == "iban":
        return lambda v, _: masks.iban(v)
    if kind == "name":
        return lambda v, _: masks.name(v, rule.part)
    if kind == "address":
        return lambda v, _: masks.address(v, rule.part)
    if kind == "hash":
        return lambda v, _: masks.hash(v, rule.length)
    if kind == "redact":
        return lambda v, _: rule.text
    return _date_shift(table, columns, column, rule, masks)


def _date_shift(
    table: str, columns: Sequence[str], column: str, rule: DataRule, masks: Masks
) -> Mask:
    entity_table, _, entity_column = rule.entity.rpartition(".")
    by = rule.by or entity_column
    if by not in columns:
        raise DataError(
            f"data.rules.{bare(table)}.{column}: the dates move with entity {rule.entity}, but "
            f"table {bare(table)!r} has no column {by!r} holding its key",
            "name the column that holds the entity's key with `by:` (e.g. by: customer_id)",
        )
    index = columns.index(by)
    entity = bare(entity_table) + "." + entity_column

    def shift(value: str, row: Sequence[Value]) -> str:
        key = row[index]
        if key is None or key == "":  # no entity: a shift of its own, still consistent
            return masks.shift_date(value, entity=f"{entity}?{value}", days=rule.days)
        return masks.shift_date(value, entity=f"{entity}={key}", days=rule.days)

    return shift


def free_text(masks: Masks) -> Callable[[str], str]:
    return lambda text: detect.replace(text, masks)
