"""Cross-checks of the `data:` and `consistency:` sections (called by `crossref.CrossChecker`):
each problem as (field path, message, hint)."""

from __future__ import annotations

from collections.abc import Iterator

from trustproof.spec.data import DataRule
from trustproof.spec.model import Spec

Found = tuple[tuple[str | int, ...], str, str]


def check_rule(key: str, rule: DataRule) -> str:
    """What is wrong with one rule on its own ('' if nothing)."""
    parts = key.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        return f"rule {key!r} does not name a column as table.column"
    if rule.kind == "date-shift":
        entity = rule.entity.split(".")
        if len(entity) not in (2, 3) or not all(entity):
            return "date-shift needs entity: table.column (the entity whose dates move together)"
        if rule.days < 1:
            return "days must be at least 1"
    elif rule.entity or rule.by:
        return "entity and by are for kind date-shift"
    if rule.kind == "hash" and not 8 <= rule.length <= 64:
        return "length must be between 8 and 64"
    if rule.part in ("first", "last") and rule.kind != "name":
        return f"part {rule.part} is for kind name"
    if rule.part in ("street", "city", "postcode") and rule.kind != "address":
        return f"part {rule.part} is for kind address"
    return ""


def data_problems(spec: Spec) -> Iterator[Found]:
    data = spec.data
    if data is not None:
        for i, sample in enumerate(data.samples):
            where: tuple[str | int, ...] = ("data", "samples", i)
            if sample.datastore not in spec.datastores:
                yield (
                    (*where, "datastore"),
                    f"unknown datastore {sample.datastore!r}",
                    "samples are seeded into a datastore declared under `datastores:`",
                )
            if sample.format != "pg-dump" and sample.table is None:
                yield (where, f"a {sample.format} sample needs `table:`", "name its table")
            if sample.format == "pg-dump" and sample.table is not None:
                yield ((*where, "table"), "a pg-dump sample names its own tables", "remove it")
            if sample.format == "copy" and not sample.columns:
                yield (where, "a copy sample needs `columns:`", "COPY data has no header")
        for key, rule in data.rules.items():
            message = check_rule(key, rule)
            if message:
                yield (("data", "rules", key), message, "see `trustproof schema` for DataRule")
    yield from _consistency(spec)


def _consistency(spec: Spec) -> Iterator[Found]:
    settings = spec.consistency
    if settings is None:
        return
    if len(settings.environments) != 2:
        yield (
            ("consistency", "environments"),
            f"{len(settings.environments)} environments given; exactly two are compared",
            "list two: each a `datastore:` of this sandbox or a `dsn_env:`",
        )
    for i, env in enumerate(settings.environments):
        where: tuple[str | int, ...] = ("consistency", "environments", i)
        given = [k for k in ("datastore", "dsn_env", "dsn") if getattr(env, k)]
        if len(given) != 1:
            yield (
                where,
                f"environment {env.name!r} gives {', '.join(given) or 'none'} of datastore, "
                "dsn_env, dsn",
                "give exactly one",
            )
        if env.datastore and env.datastore not in spec.datastores:
            yield ((*where, "datastore"), f"unknown datastore {env.datastore!r}", "")
        if env.dsn:
            # psycopg only for a spec that writes a connection string (`validate` starts fast)
            import psycopg  # noqa: PLC0415
            from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

            try:
                fields = conninfo_to_dict(env.dsn)
            except psycopg.ProgrammingError:
                yield ((*where, "dsn"), "not a libpq connection string", "e.g. host=db port=5432")
                continue
            if "password" in fields:
                yield (
                    (*where, "dsn"),
                    "the connection string carries a password",
                    "never write secrets in the spec: use dsn_env",
                )
