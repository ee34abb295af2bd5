"""Two environments' snapshots compared (pure): every difference named.

diff = compare(primary, target)
diff.schema      # ["column public.customers.phone: type text in primary, ... in target", ...]
diff.grants, diff.row_counts, diff.checksums
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from trustproof.consistency.pgsnapshot import Snapshot, checksum

K = TypeVar("K")
SAMPLE_ROWS = 3


@dataclass
class Differences:
    schema: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    row_counts: list[str] = field(default_factory=list)
    checksums: list[str] = field(default_factory=list)


def _keyed(  # noqa: PLR0917 (two sides and their names)
    a: Mapping[K, object], b: Mapping[K, object], what: str, an: str, bn: str, show: object
) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b), key=str):
        label = show(key) if callable(show) else str(key)
        if key not in b:
            out.append(f"{what} {label}: in {an}, missing in {bn}")
        elif key not in a:
            out.append(f"{what} {label}: in {bn}, missing in {an}")
        elif a[key] != b[key]:
            out.append(f"{what} {label}: {a[key]} in {an}, {b[key]} in {bn}")
    return out


def compare(a: Snapshot, b: Snapshot) -> Differences:
    an, bn = a.name, b.name
    diff = Differences()
    diff.schema += _keyed(
        {t: "present" for t in a.tables}, {t: "present" for t in b.tables}, "table", an, bn, None
    )
    both = a.tables & b.tables
    cols_a = {k: _col(v) for k, v in a.columns.items() if k[0] in both}
    cols_b = {k: _col(v) for k, v in b.columns.items() if k[0] in both}
    diff.schema += _keyed(cols_a, cols_b, "column", an, bn, lambda k: f"{k[0]}.{k[1]}")
    diff.schema += _keyed(a.constraints, b.constraints, "constraint", an, bn, _pair)
    diff.schema += _keyed(a.indexes, b.indexes, "index", an, bn, _pair)
    roles_a = {r: _role(v) for r, v in a.roles.items()}
    roles_b = {r: _role(v) for r, v in b.roles.items()}
    diff.grants += _keyed(roles_a, roles_b, "role", an, bn, None)
    for grantee, table, privilege in sorted(a.grants ^ b.grants):
        side = an if (grantee, table, privilege) in a.grants else bn
        other = bn if side == an else an
        diff.grants.append(
            f"grant {privilege} on {table} to {grantee}: in {side}, missing in {other}"
        )
    for table in sorted(both):
        ca, cb = a.counts.get(table, 0), b.counts.get(table, 0)
        if ca != cb:
            diff.row_counts.append(f"rows in {table}: {ca} in {an}, {cb} in {bn}")
        da, db = a.digests.get(table), b.digests.get(table)
        if da is None or db is None or checksum(da) == checksum(db):
            continue
        only_a, only_b = da - db, db - da
        sample = [f"{an} only: {a.samples[table].get(d, '?')}" for d in list(only_a)[:SAMPLE_ROWS]]
        sample += [f"{bn} only: {b.samples[table].get(d, '?')}" for d in list(only_b)[:SAMPLE_ROWS]]
        diff.checksums.append(
            f"checksum of {table}: {checksum(da)[:12]} in {an}, {checksum(db)[:12]} in {bn} "
            f"({sum(only_a.values())} rows only in {an}, {sum(only_b.values())} only in {bn}; "
            f"masked sample: {'; '.join(sample)})"
        )
    return diff


def _pair(key: tuple[str, str]) -> str:
    return f"{key[1]} on {key[0]}"


def _col(value: tuple[str, bool, str]) -> str:
    kind, notnull, default = value
    return f"{kind}{' not null' if notnull else ''}{f' default {default}' if default else ''}"


def _role(attributes: tuple[bool, ...]) -> str:
    names = ("superuser", "createrole", "createdb", "login", "replication", "bypassrls")
    return ", ".join(n for n, on in zip(names, attributes, strict=False) if on) or "no attributes"
