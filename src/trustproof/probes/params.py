"""Typed parameters of a case, one kind per family (instead of a bag of strings).

================================  ===========================================================
parameter                         used by
================================  ===========================================================
`MethodSwap(method)`              ``authz.method-swap``: the method sent instead of the cell's
`PathTrick(path)`                 ``authz.path-traversal``, ``authz.refused-path-tricks``: the
                                  path sent, byte-exact
`RequestTrick(method, headers,    ``authz.refused-request-tricks``: the method, added headers,
host, absolute_form)`             ``Host`` variant and target form sent, byte-exact
`Impersonation(claims_to_be)`     ``token.forged-headers``: whom the forged headers name
`TablePrivilege(verb, table)`     ``db.inside-grants`` / ``db.outside-grants`` on one cell
`Login(attempt, user)`            the ``db.*`` connection probes: how to log in, as whom
================================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trustproof.view.exchange import HostVariant

LoginAttempt = Literal[
    "no-client-cert", "untrusted-ca", "password", "sslmode-disable", "cn-mismatch"
]


@dataclass(frozen=True)
class MethodSwap:
    method: str


@dataclass(frozen=True)
class PathTrick:
    path: str


@dataclass(frozen=True)
class RequestTrick:
    method: str = ""  # instead of the cell's ("" keeps it)
    headers: tuple[tuple[str, str], ...] = ()  # added to the caller's valid presentation
    host: HostVariant = "as-is"
    absolute_form: bool = False


@dataclass(frozen=True)
class Impersonation:
    claims_to_be: str


@dataclass(frozen=True)
class TablePrivilege:
    verb: str
    table: str


@dataclass(frozen=True)
class Login:
    attempt: LoginAttempt
    user: str | None = None  # who to log in as (None: the caller itself)


Params = MethodSwap | PathTrick | Impersonation | TablePrivilege | Login | RequestTrick
