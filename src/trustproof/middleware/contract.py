"""The contract a service behind a trustproof gateway honours, in one object.

1. **Believe only the gateway.** Every request must carry a valid ``X-Trustproof-Gateway-Proof``
   (`trustproof.gateway.proof`), signed with the key in ``TRUSTPROOF_GATEWAY_PROOF_KEY_FILE``;
   anything else is refused with ``401 {"error": "not from the gateway", "reason": …}`` before any
   handler runs — that is what keeps a local process from reaching the service's plain port with
   forged identity headers (the ``bypass.direct-port`` probe).
2. **Say who served.** Answers from a handler carry ``X-Served-By: <TRUSTPROOF_SERVICE>``, the
   positive evidence the suite needs to count a request as served by the service (and not by a
   default page of something else on the path). Framework answers for no such route or method
   (404, 405, 501) do not: nothing of the service's handled them.
3. **Take the caller from the proof**, never from the request: `Caller` is what the gateway
   verified (principal, kind, roles, route, client SPIFFE ID, request id).

Standard library only (and `trustproof.gateway.proof`, itself standard library only): a service
imports it in milliseconds. The ASGI and WSGI middleware (`trustproof.middleware.asgi`,
`.wsgi`) apply it to FastAPI/Starlette and Flask/Django/any WSGI app.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from trustproof.errors import TrustproofError
from trustproof.gateway.proof import KEY_BYTES, verify_proof

SERVED_BY = "X-Served-By"
NOT_HANDLED = frozenset({404, 405, 501})
"""Statuses a framework answers when no handler matched: no marker on them."""
KEY_FILE_VARIABLE = "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE"


class ContractError(TrustproofError):
    """The service cannot honour the contract as configured (raised at start-up, never per
    request): say what is missing and what to do."""


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the gateway verified it (from its signed ``X-Trustproof-*`` headers)."""

    principal: str
    kind: str  # "workload" or "persona"
    roles: tuple[str, ...]
    route: str  # "GET /orders/{id}": the route the gateway's policy decided on
    spiffe_id: str | None  # the client certificate's SPIFFE ID, when one was presented
    request_id: str


@dataclass(frozen=True)
class Refusal:
    """A request that did not come through the gateway: what to answer instead."""

    reason: str
    status: int = 401

    def body(self) -> bytes:
        return json.dumps({"error": "not from the gateway", "reason": self.reason}).encode()


@dataclass(frozen=True)
class Contract:
    service: str
    key: bytes | None = field(repr=False)  # None: `gateway: none`, nothing to verify
    clock: Callable[[], float] = time.time

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_proof: bool = True
    ) -> Contract:
        """The contract of the service the sandbox started: its name and its proof key.

        `require_proof=False` is for a service with ``gateway: none`` (it terminates mTLS
        itself, no gateway signs anything): then only the marker is set."""
        env = os.environ if environ is None else environ
        service = env.get("TRUSTPROOF_SERVICE", "")
        if not service:
            raise ContractError(
                "TRUSTPROOF_SERVICE is not set: this process was not started by trustproof "
                "(run it with `trustproof up` or `trustproof run`)"
            )
        path = env.get(KEY_FILE_VARIABLE, "")
        if not path:
            if require_proof:
                raise ContractError(
                    f"{KEY_FILE_VARIABLE} is not set, so requests from the gateway cannot be told "
                    "from forged ones; for a service with `gateway: none` pass require_proof=False"
                )
            return cls(service, None)
        try:
            with open(path, "rb") as handle:
                key = handle.read(KEY_BYTES + 1)
        except OSError as exc:
            raise ContractError(
                f"cannot read {KEY_FILE_VARIABLE} ({path}): {exc.strerror}"
            ) from None
        if len(key) != KEY_BYTES:
            raise ContractError(
                f"{KEY_FILE_VARIABLE} ({path}) does not hold a {KEY_BYTES}-byte key"
            )
        return cls(service, key)

    def check(
        self, method: str, target: str, headers: Iterable[tuple[str, str]]
    ) -> Caller | Refusal | None:
        """The verified caller, a `Refusal`, or None when there is nothing to verify
        (``gateway: none``). `target` is the request-target exactly as received."""
        if self.key is None:
            return None
        pairs = list(headers)
        check = verify_proof(self.key, method, target, pairs, self.clock())
        if not check.ok:
            return Refusal(check.reason)
        found = {name.lower(): value for name, value in pairs}
        roles = found.get("x-trustproof-roles", "")
        return Caller(
            principal=found.get("x-trustproof-principal", ""),
            kind=found.get("x-trustproof-principal-kind", ""),
            roles=tuple(r for r in roles.split(",") if r),
            route=found.get("x-trustproof-route", ""),
            spiffe_id=found.get("x-trustproof-client-spiffe-id") or None,
            request_id=found.get("x-trustproof-request-id", ""),
        )

    def marks(self, status: int) -> bool:
        """Whether an answer with `status` carries the ``X-Served-By`` marker."""
        return status not in NOT_HANDLED
