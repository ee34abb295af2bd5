"""Datastore role grants vs the oracle (`access.datastores`), checked before anything starts.

A grant the oracle does not expect is an over-permission built into the sandbox; an expected
privilege no role grants fails for sure. Each mistake is refused at its line with a hint; the
matching spec (the twin) loads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.spec import parse_spec

SPEC = """\
trust_domain: t.test
services:
  api:
    command: [python, api.py]
    port: 18201
datastores:
  db:
    roles:
      api:
        orders: [{roles}]
access:
  datastores:
    db:
      api:
        {table}: [{access}]
"""


def load(tmp_path: Path, roles: str, access: str, table: str = "orders") -> SpecError | None:
    text = SPEC.format(roles=roles, access=access, table=table)
    try:
        parse_spec(text, tmp_path / "trustproof.yaml")
    except SpecError as exc:
        return exc
    return None


def test_grants_equal_to_the_oracle_load(tmp_path: Path) -> None:
    assert load(tmp_path, "select, INSERT", "insert, select") is None


def test_the_public_schema_may_be_named_or_not(tmp_path: Path) -> None:
    assert load(tmp_path, "select", "select", table="public.orders") is None


def test_a_grant_the_oracle_does_not_expect_is_refused_at_its_line(tmp_path: Path) -> None:
    error = load(tmp_path, "select, delete", "select")
    assert error is not None
    (problem,) = error.problems
    assert (problem.line, problem.path) == (10, "datastores.db.roles.api.orders")
    assert problem.message == (
        "role 'api' is granted DELETE on 'orders', which access.datastores.db.api does not expect"
    )
    assert problem.hint.startswith("add delete on orders to access.datastores.db.api")


def test_an_expected_privilege_no_role_grants_is_refused(tmp_path: Path) -> None:
    error = load(tmp_path, "select", "select, update")
    assert error is not None
    (problem,) = error.problems
    assert (problem.line, problem.path) == (15, "access.datastores.db.api.orders")
    assert "datastores.db.roles.api does not grant it" in problem.message


@pytest.mark.parametrize(("roles", "access"), [("select", "select, update"), ("update", "")])
def test_both_directions_name_the_privilege(tmp_path: Path, roles: str, access: str) -> None:
    error = load(tmp_path, roles, access)
    assert error is not None
    assert any("UPDATE on 'orders'" in p.message for p in error.problems)


def test_the_team_templates_must_exist(tmp_path: Path) -> None:
    text = SPEC.format(roles="select", access="select", table="orders").replace(
        "    roles:\n",
        "    hba: db/pg_hba.conf.j2\n    conf: db/postgresql.conf.j2\n    roles:\n",
        1,
    )
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "postgresql.conf.j2").write_text("ssl = on\n")
    with pytest.raises(SpecError) as caught:
        parse_spec(text, tmp_path / "trustproof.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (8, "datastores.db.hba")
    assert problem.message.startswith("pg_hba.conf template ")
    (tmp_path / "db" / "pg_hba.conf.j2").write_text("hostssl all all 127.0.0.1/32 cert\n")
    spec = parse_spec(text, tmp_path / "trustproof.yaml")
    assert spec.datastores["db"].hba == "db/pg_hba.conf.j2"
