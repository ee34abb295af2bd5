"""``consistency.schema``, ``consistency.grants``, ``consistency.row-counts``,
``consistency.checksums``: the spec's `consistency:` section compares two environments'
PostgreSQL — a datastore of this sandbox (read as its admin over the private socket) or another
environment's connection string (from the variable `dsn_env` names) — and each scenario fails
naming every difference of its kind (`pgcompare`). Rows are masked before they are hashed or
shown, under one random key per comparison (both sides alike).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trustproof.chaos.scenario import Recorder, Scenario, ScenarioEnv, ScenarioResult
from trustproof.consistency.pgcompare import Differences, compare
from trustproof.consistency.pgsnapshot import SnapshotError, read_snapshot
from trustproof.data.keyed import MaskingKey
from trustproof.data.pipeline import Scrubber
from trustproof.spec.data import ConsistencyEnvironment, ConsistencySettings
from trustproof.spec.model import Spec

MAX_NOTES = 30


def environment_dsn(
    env: ConsistencyEnvironment, settings: ConsistencySettings, sandbox: Any
) -> str:
    """The connection string of one environment; `SnapshotError` when it cannot be had."""
    if env.datastore:
        servers = getattr(getattr(sandbox, "datastores", None), "servers", {})
        if env.datastore not in servers:
            raise SnapshotError(f"datastore {env.datastore!r} is not running in this sandbox")
        dsn: str = servers[env.datastore].admin_settings()
        return dsn
    if env.dsn_env:
        value = os.environ.get(env.dsn_env, "")
        if not value:
            raise SnapshotError(
                f"environment {env.name!r}: the variable {env.dsn_env} is not set",
                "export the other environment's connection string in it",
            )
        dsn = value
    else:
        dsn = env.dsn
    if settings.database and "dbname" not in conninfo_to_dict(dsn):
        dsn = make_conninfo(dsn, dbname=settings.database)
    return dsn


def differences(spec: Spec, sandbox: Any) -> Differences:
    settings = spec.consistency
    if settings is None:
        raise SnapshotError("the spec has no consistency section")
    scrubber = Scrubber(spec.data.rules if spec.data else {}, MaskingKey(secrets.token_bytes(32)))
    a, b = settings.environments
    snap_a = read_snapshot(a.name, environment_dsn(a, settings, sandbox), scrubber)
    snap_b = read_snapshot(b.name, environment_dsn(b, settings, sandbox), scrubber)
    return compare(snap_a, snap_b)


def _scenario(check: str, pick: Callable[[Differences], list[str]], what: str) -> Scenario:
    async def scenario(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
        settings = env.spec.consistency
        if settings is None or len(settings.environments) != 2:
            return rec.finish("skip", "the spec has no consistency section")
        if check not in settings.compare:
            return rec.finish("skip", f"{check} is not in consistency.compare")
        sandbox = getattr(env.view, "sandbox", None)
        try:
            diff = await asyncio.to_thread(differences, env.spec, sandbox)
        except SnapshotError as exc:
            return rec.finish("error", exc.message)
        found = pick(diff)
        names = " and ".join(e.name for e in settings.environments)
        rec.figure("differences", len(found))
        for line in found[:MAX_NOTES]:
            rec.note(line)
        if found:
            return rec.verdict(False, f"{len(found)} {what} differ: " + "; ".join(found[:3]))
        return rec.verdict(True, f"{names} have the same {what}")

    return scenario


consistency_schema = _scenario(
    "schema", lambda d: d.schema, "tables, columns, constraints, indexes"
)
consistency_grants = _scenario("grants", lambda d: d.grants, "roles and grants")
consistency_row_counts = _scenario("row-counts", lambda d: d.row_counts, "row counts")
consistency_checksums = _scenario("checksums", lambda d: d.checksums, "table checksums")
