"""``db.undeclared-privilege`` and ``db.effective-hba`` against the fake's catalogs, and the pure
comparisons behind them: each mistake is caught by the right case, naming the object and the
privilege; the correct catalogs (the twin) pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from trustproof.probes.base import Plan
from trustproof.probes.datastore import EffectiveHbaProbe, UndeclaredPrivilegeProbe
from trustproof.probes.db_privileges import is_default, undeclared
from trustproof.probes.model import Case, CaseResult, judge
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.view.db_catalog import PUBLIC, DbCatalog, HbaRule, Holding
from trustproof.view.fake import FakeServer, FakeView

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SHOP)


def judged(spec: Spec, server: FakeServer) -> dict[str, CaseResult]:
    probes = (UndeclaredPrivilegeProbe(), EffectiveHbaProbe())
    plan = Plan.of(spec)

    async def main() -> dict[str, CaseResult]:
        view = FakeView(spec, server=server)
        found = {}
        for probe in probes:
            for case in probe.cases(plan):
                result = await probe.run(case, view)
                found[case.id] = CaseResult(case, result, judge(case, result))
        return found

    return asyncio.run(main())


def failures(found: dict[str, CaseResult]) -> dict[str, str]:
    return {
        cid: f"{cr.verdict}: {cr.result.evidence.detail}" for cid, cr in found.items() if not cr.ok
    }


def test_cases_one_per_role_one_for_public_one_hba(spec: Spec) -> None:
    plan = Plan.of(spec)
    ids = [c.id for p in (UndeclaredPrivilegeProbe(), EffectiveHbaProbe()) for c in p.cases(plan)]
    assert ids == [
        "db.undeclared-privilege | shopdb | storefront | privileges",
        "db.undeclared-privilege | shopdb | orders | privileges",
        "db.undeclared-privilege | shopdb | payments | privileges",
        "db.undeclared-privilege | shopdb | - | privileges | PUBLIC",
        "db.effective-hba | shopdb | - | pg_hba.conf",
    ]


def test_a_correctly_provisioned_datastore_passes(spec: Spec) -> None:
    found = judged(spec, FakeServer())
    assert failures(found) == {}
    storefront = found["db.undeclared-privilege | shopdb | storefront | privileges"].result
    assert storefront.evidence.detail == (
        "nothing beyond the spec; storefront holds: storefront: CONNECT on database shop; "
        "storefront: USAGE on schema public; storefront: SELECT on table public.products"
    )


EXTRA = {
    "an extra table": (
        Holding("storefront", "table", "public.payments", "SELECT"),
        "db.undeclared-privilege | shopdb | storefront | privileges",
        "storefront: SELECT on table public.payments",
    ),
    "a grant to PUBLIC": (
        Holding(PUBLIC, "table", "public.orders", "SELECT"),
        "db.undeclared-privilege | shopdb | - | privileges | PUBLIC",
        "PUBLIC: SELECT on table public.orders",
    ),
    "a role attribute": (
        Holding("orders", "role", "orders", "CREATEROLE"),
        "db.undeclared-privilege | shopdb | orders | privileges",
        "orders: CREATEROLE",
    ),
    "a default privilege": (
        Holding("payments", "default privilege", "tables created by x in any schema", "SELECT"),
        "db.undeclared-privilege | shopdb | payments | privileges",
        "payments: SELECT on tables created by x in any schema (default privilege)",
    ),
    "a membership": (
        Holding("orders", "role", "pg_read_all_data", "MEMBER"),
        "db.undeclared-privilege | shopdb | orders | privileges",
        "orders: member of role pg_read_all_data",
    ),
    "a grant option": (
        Holding("storefront", "table", "public.products", "SELECT", grantable=True),
        "db.undeclared-privilege | shopdb | storefront | privileges",
        "storefront: SELECT WITH GRANT OPTION on table public.products",
    ),
}


@pytest.mark.parametrize("mistake", list(EXTRA))
def test_each_undeclared_privilege_is_an_over_permission_naming_it(
    spec: Spec, mistake: str
) -> None:
    holding, case_id, named = EXTRA[mistake]
    found = judged(spec, FakeServer(db_extra_holdings=frozenset({holding})))
    assert failures(found) == {case_id: f"over-permission: beyond the spec: {named}"}


@pytest.mark.parametrize(
    ("rule", "finding"),
    [
        (
            HbaRule(0, "host", ("all",), ("all",), "127.0.0.1/32", "trust"),
            "trust over TCP without TLS",
        ),
        (HbaRule(0, "hostssl", ("all",), ("all",), "127.0.0.1/32", "trust"), "trust over TLS"),
        (HbaRule(0, "hostssl", ("all",), ("all",), "127.0.0.1/32", "md5"), "md5 over TLS"),
        (HbaRule(0, "hostssl", ("all",), ("all",), "0.0.0.0/0", "scram-sha-256"), "scram-sha-256"),
        (HbaRule(0, "hostnossl", ("all",), ("all",), "0.0.0.0/0", "password"), "password over TCP"),
        (HbaRule(0, "hostssl", ("all",), ("all",), "", "", error="bad"), "could not use this line"),
    ],
)
def test_a_tcp_rule_without_a_client_certificate_is_caught(
    spec: Spec, rule: HbaRule, finding: str
) -> None:
    found = judged(spec, FakeServer(db_extra_hba=(rule,)))
    ((case_id, failure),) = failures(found).items()
    assert case_id == "db.effective-hba | shopdb | - | pg_hba.conf"
    assert failure.startswith("over-permission: a TCP client gets in without a client certificate")
    assert finding in failure


@pytest.mark.parametrize(
    "rule",
    [
        HbaRule(
            0,
            "hostssl",
            ("all",),
            ("all",),
            "127.0.0.1/32",
            "scram-sha-256",
            ("clientcert=verify-full",),
        ),
        HbaRule(0, "host", ("all",), ("all",), "0.0.0.0/0", "reject"),
        HbaRule(0, "local", ("all",), ("all",), "", "trust"),  # not reachable over TCP
    ],
)
def test_rules_as_strict_as_cert_pass(spec: Spec, rule: HbaRule) -> None:
    assert failures(judged(spec, FakeServer(db_extra_hba=(rule,)))) == {}


@pytest.mark.parametrize(
    ("setting", "finding"),
    [
        (("ssl", "off"), "ssl = off"),
        (("password_encryption", "md5"), "password_encryption = md5"),
        (("ssl_min_protocol_version", "TLSv1"), "TLS below 1.2"),
        (("listen_addresses", "*"), "listen_addresses = *: listens beyond loopback"),
    ],
)
def test_weak_settings_are_caught(spec: Spec, setting: tuple[str, str], finding: str) -> None:
    failure = failures(judged(spec, FakeServer(db_settings=(setting,))))
    assert list(failure) == ["db.effective-hba | shopdb | - | pg_hba.conf"]
    assert finding in next(iter(failure.values()))


def catalog(holdings: Sequence[Holding], owned: dict[str, str] | None = None) -> DbCatalog:
    return DbCatalog("read", database="shop", holdings=tuple(holdings), owned_sequences=owned or {})


def test_the_sequence_of_a_table_the_role_may_insert_into_is_expected(spec: Spec) -> None:
    usage = Holding("orders", "sequence", "public.orders_id_seq", "USAGE")
    owned = {"public.orders_id_seq": "public.orders"}
    assert undeclared(spec, "shopdb", "orders", catalog([usage], owned)) == []
    # storefront may not insert into orders: the same USAGE is beyond the spec for it
    theirs = Holding("storefront", "sequence", "public.orders_id_seq", "USAGE")
    assert undeclared(spec, "shopdb", "storefront", catalog([theirs], owned)) == [theirs]


def test_publics_defaults_are_known_and_nothing_more() -> None:
    assert is_default(Holding(PUBLIC, "database", "postgres", "TEMPORARY"), "shop")
    assert is_default(Holding(PUBLIC, "function", "public.f()", "EXECUTE"), "shop")
    assert is_default(Holding(PUBLIC, "default privilege", "functions created by a", "EXECUTE"), "")
    # provisioning revoked these on the sandbox's database and schema: back means granted back
    assert not is_default(Holding(PUBLIC, "database", "shop", "CONNECT"), "shop")
    assert not is_default(Holding(PUBLIC, "schema", "public", "USAGE"), "shop")
    assert not is_default(Holding(PUBLIC, "table", "public.orders", "SELECT"), "shop")
    assert not is_default(Holding("orders", "function", "public.f()", "EXECUTE"), "shop")


def test_an_unreadable_catalog_is_an_error_never_a_pass(spec: Spec) -> None:
    class Unreadable(FakeView):
        async def db_catalog(self, datastore: str, roles: Sequence[str]) -> DbCatalog:
            return DbCatalog("cannot-run", "no admin connection")

    plan = Plan.of(spec)
    view = Unreadable(spec)
    for probe in (UndeclaredPrivilegeProbe(), EffectiveHbaProbe()):
        case: Case = next(iter(probe.cases(plan)))
        result = asyncio.run(probe.run(case, view))
        assert (result.outcome, judge(case, result)) == ("error", "error")
