"""The fake's boundary settings (`FakeServer`) and its PostgreSQL: ``hostssl ... cert`` with
exactly the spec's grants, answering as libpq reports a real server (see `trustproof.view.fake`).
"""

from __future__ import annotations

from dataclasses import dataclass

from trustproof.spec.model import Spec
from trustproof.view.exchange import DbAnswer, DbRequest


@dataclass(frozen=True)
class FakeServer:
    """How the fake boundaries behave. The defaults are a correctly configured gateway and
    PostgreSQL; each field turns one check off or bends it (a server a probe should catch)."""

    ignore_cert: frozenset[str] = frozenset()  # verify_svid reasons accepted anyway
    accept_legacy_tls: bool = False
    accept_plaintext: bool = False
    require_client_cert: bool = True  # where the spec requires one
    ignore_token: frozenset[str] = frozenset()  # TokenValidator reasons accepted anyway
    require_token: bool = True  # where the spec requires one
    trust_identity_headers: bool = False  # X-Trustproof-Principal names the principal
    case_insensitive_paths: bool = False
    decode_encoded_slash: bool = False
    enforce_policy: bool = True
    direct_port_checks_proof: bool = True
    db_require_cert: bool = True
    db_accept_password: bool = False
    db_accept_plaintext: bool = False
    db_check_cn: bool = True
    db_extra_grants: frozenset[tuple[str, str, str]] = frozenset()  # (role, verb, table)
    # The service takes the caller from this forwarded-identity header when it reaches it (a
    # caller named in its value); "" for none.
    honoured_identity_header: str = ""
    gateway_strips_identity_headers: bool = True  # the gateway removes them before forwarding
    # (service, port): the service's processes also listen on these ports (plaintext TCP).
    extra_listeners: frozenset[tuple[str, int]] = frozenset()


def decide_db(spec: Spec, server: FakeServer, request: DbRequest) -> DbAnswer:
    """PostgreSQL with ``hostssl ... cert`` and the spec's grants, bent by `server`."""
    store = spec.datastores[request.datastore]
    sent = f"connect to fake://{request.datastore} as {request.user} ({request.credential})"
    if request.sslmode == "disable" and not server.db_accept_plaintext:
        detail = f'pg_hba.conf rejects connection for user "{request.user}", no encryption'
        return DbAnswer("connect-failed", detail, sent=sent)
    if request.credential == "untrusted-ca":
        return DbAnswer("connect-failed", "SSL error: tlsv1 alert unknown ca", sent=sent)
    if request.credential == "password" and not server.db_accept_password:
        return DbAnswer(
            "connect-failed", "connection requires a valid client certificate", sent=sent
        )
    if request.credential == "no-cert" and server.db_require_cert:
        return DbAnswer(
            "connect-failed", "connection requires a valid client certificate", sent=sent
        )
    if (
        request.credential == "certificate"
        and request.user != request.caller
        and server.db_check_cn
    ):
        detail = f'certificate authentication failed for user "{request.user}"'
        return DbAnswer("connect-failed", detail, sent=sent)
    if request.user not in store.roles:
        return DbAnswer("connect-failed", f'role "{request.user}" does not exist', sent=sent)
    if request.verb is None:
        return DbAnswer("connected", f"connected as {request.user}", sent=sent)
    granted = store.roles[request.user].get(request.table, ())
    extra = (request.user, request.verb, request.table) in server.db_extra_grants
    if request.verb in granted or extra:
        return DbAnswer("executed", "succeeded (rolled back)", sent=sent)
    detail = f"permission denied for table {request.table}"
    return DbAnswer("refused", detail, "42501", sent=sent)
