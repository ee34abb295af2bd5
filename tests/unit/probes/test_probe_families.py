"""Every probe family against the in-memory `FakeView` (no sockets): a well-configured boundary
passes every generated case of the shop, and for each probe a server it should catch — one check
switched off or bent — turns exactly that probe's cases into over-permissions (the failing twin).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from trustproof.probes.bypass import forgeable_headers
from trustproof.probes.model import Case, Verdict, judge
from trustproof.probes.registry import generate, probe_for
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.view.fake import FakeServer, FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")
HEADERS = len(forgeable_headers(SHOP))  # the bypass probes forge one identity header per case


def verdicts(spec: Spec, server: FakeServer) -> dict[Case, Verdict]:
    view = FakeView(spec, server)
    cases = generate(spec)

    async def main() -> dict[Case, Verdict]:
        return {case: judge(case, await probe_for(case).run(case, view)) for case in cases}

    return asyncio.run(main())


def failing(found: dict[Case, Verdict]) -> Counter[tuple[str, str]]:
    return Counter((case.probe, verdict) for case, verdict in found.items() if verdict != "pass")


def test_a_well_configured_shop_passes_every_case_of_every_family() -> None:
    found = verdicts(SHOP, FakeServer())
    assert failing(found) == Counter()
    # every family is here; the two header probes: one case per header on three boundaries;
    # egress.dependency-direct: payments -> card-network (mocked)
    assert len(found) == 852 - 6 + 2 * 3 * HEADERS + 3 + 1
    layers = {case.probe.split(".")[0] for case in found}
    assert layers == {"authz", "token", "tls", "bypass", "db", "surface", "egress"}


OVER = "over-permission"
# bug -> (the server, what the suite must then report: {(probe, verdict): number of cases}).
# The shop has three service boundaries; on each, the credential probes use one allowed cell.
TWINS: dict[str, tuple[FakeServer, dict[tuple[str, str], int]]] = {
    # tls. The probes present a broken certificate with the caller's token bound to its valid
    # one: where the caller is a workload, a server that accepts any certificate but checks the
    # binding still refuses — at the token stage, one stage late (wrong-stage); a persona's
    # unbound token lets the broken certificate in (over-permission).
    "accepts expired certificates": (
        FakeServer(ignore_cert=frozenset({"expired"})),
        {("tls.expired-cert", OVER): 1, ("tls.expired-cert", "wrong-stage"): 2},
    ),
    "accepts expired certificates, ignores the binding": (
        FakeServer(ignore_cert=frozenset({"expired"}), ignore_token=frozenset({"cnf-mismatch"})),
        {("tls.expired-cert", OVER): 3, ("token.cnf-mismatch", OVER): 2},
    ),
    "accepts any CA": (
        FakeServer(ignore_cert=frozenset({"untrusted"})),
        {
            ("tls.untrusted-ca", OVER): 1,
            ("tls.self-signed", OVER): 1,
            ("tls.untrusted-ca", "wrong-stage"): 2,
            ("tls.self-signed", "wrong-stage"): 2,
        },
    ),
    "ignores the trust domain": (
        FakeServer(ignore_cert=frozenset({"wrong-trust-domain"})),
        {("tls.wrong-trust-domain", "wrong-stage"): 3},
    ),
    "speaks TLS 1.0 and 1.1": (
        FakeServer(accept_legacy_tls=True),
        {("tls.legacy-version", OVER): 6},
    ),
    # token
    "skips the audience check": (
        FakeServer(ignore_token=frozenset({"wrong-audience"})),
        {("token.wrong-audience", OVER): 2},
    ),
    "takes alg from the token": (
        FakeServer(ignore_token=frozenset({"alg-not-allowed"})),
        {  # every alg-none spelling; HS256 with the public key or an injected kid
            ("token.alg-none", OVER): 8,
            ("token.hs256-public-key", OVER): 2,
            ("token.kid-injection", OVER): 4,
        },
    ),
    "ignores revocations": (
        FakeServer(ignore_token=frozenset({"revoked"})),
        {("token.revoked", OVER): 3},
    ),
    "ignores the binding": (
        FakeServer(ignore_token=frozenset({"cnf-mismatch"})),
        {("token.cnf-mismatch", OVER): 2},
    ),
    # no header is no token: the token in the query or a cookie gets in as well
    "does not need a token": (
        FakeServer(require_token=False),
        {("token.missing", OVER): 2, ("token.in-query", OVER): 2, ("token.in-cookie", OVER): 2},
    ),
    # authz (and the forged headers, which only the policy refuses once they are stripped)
    "enforces no policy": (
        FakeServer(enforce_policy=False),
        {
            ("authz.outside-matrix", OVER): 48,
            ("authz.method-swap", OVER): 1,
            ("token.forged-headers", OVER): 3 * HEADERS,
            # the refused tricks its path check does not already refuse as malformed
            ("authz.refused-path-tricks", OVER): 160,
            ("authz.refused-request-tricks", OVER): 129,
        },
    ),
    # a server deciding on the path exactly as sent while its handler normalises (more in
    # tests/unit/probes/test_paths.py); one matching paths case-insensitively in both its check
    # and its handler is consistent, and fails nothing
    "checks the raw path, normalises in the handler": (
        FakeServer(check_raw_path=True),
        {("authz.refused-path-tricks", OVER): 240, ("authz.refused-request-tricks", OVER): 38},
    ),
    "decides on override headers": (
        FakeServer(honour_override_headers=True),
        {("authz.refused-request-tricks", OVER): 9},
    ),
    # bypass
    "believes identity headers": (
        FakeServer(trust_identity_headers=True),
        {("token.forged-headers", OVER): 3},  # the variant sending X-Trustproof-Principal
    ),
    "serves its own port without the gateway's proof": (
        FakeServer(direct_port_checks_proof=False),
        {("bypass.direct-port", OVER): 3 * HEADERS},
    ),
    # datastore
    "accepts passwords": (
        FakeServer(db_accept_password=True),
        {("db.password", OVER): 1, ("db.effective-hba", OVER): 1},
    ),
    "trusts any connection": (
        FakeServer(db_accept_plaintext=True, db_require_cert=False),
        {
            ("db.no-client-cert", OVER): 1,
            ("db.sslmode-disable", OVER): 1,
            ("db.effective-hba", OVER): 1,
        },
    ),
    "maps any certificate to any role": (
        FakeServer(db_check_cn=False),
        {("db.outside-grants", OVER): 1},
    ),
    "grants more than the spec": (
        FakeServer(db_extra_grants=frozenset({("storefront", "delete", "orders")})),
        {("db.outside-grants", OVER): 1, ("db.undeclared-privilege", OVER): 1},
    ),
}


@pytest.mark.parametrize("bug", sorted(TWINS))
def test_a_server_the_probe_should_catch_fails_exactly_that_probe(bug: str) -> None:
    server, expected = TWINS[bug]
    assert failing(verdicts(SHOP, server)) == Counter(expected)


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("example", ["nginx-mtls", "pyjwt-mtls"])
def test_services_terminating_mtls_themselves_pass_when_well_configured(example: str) -> None:
    spec = load_spec(EXAMPLES / example / "trustproof.yaml")
    found = verdicts(spec, FakeServer())
    assert {case.kind for case in found} == {"self"}
    assert failing(found) == Counter()


def test_a_service_skipping_its_audience_check_is_caught_by_wrong_audience() -> None:
    spec = load_spec(EXAMPLES / "pyjwt-mtls" / "trustproof.yaml")
    found = verdicts(spec, FakeServer(ignore_token=frozenset({"wrong-audience"})))
    assert failing(found) == Counter({("token.wrong-audience", OVER): 1})
