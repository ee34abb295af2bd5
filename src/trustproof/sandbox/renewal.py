"""Renewal of every identity the sandbox issues, at half-life, by one ticker.

Each tick asks every rotator whether its certificate is due (`Rotator.tick` renews it then and
tells its subscribers: files, gateways, egress proxies, the token service's listening context, the
admin files), then the datastores (their server certificates, installed and reloaded), then
whether the JWKS, signing-key and CRL files must be rewritten (`trustfiles`). A renewal
that fails is logged and tried again at the next tick — the current certificate still has up to
half its life — and never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from trustproof.errors import SandboxError
from trustproof.identity import Rotator
from trustproof.scrub import scrubbed_traceback
from trustproof.spec.values import Duration

ROTATION_TICK_SECONDS = 1.0
MIN_CERTIFICATE_TTL_SECONDS = 4.0
"""Below this, renewing at half-life leaves too little overlap for a service to reload."""
log = logging.getLogger("trustproof.sandbox")


def check_certificate_ttl(ttl: Duration) -> None:
    """Refuse a certificate lifetime too short to renew at half-life with overlap."""
    if ttl.seconds < MIN_CERTIFICATE_TTL_SECONDS:
        raise SandboxError(
            f"ttl.certificate is {ttl}: too short for the sandbox to renew certificates at "
            "half-life and give every service time to reload",
            f"use at least {MIN_CERTIFICATE_TTL_SECONDS:g}s (the default is 5m)",
        )


def tick_seconds(certificate_ttl_seconds: float) -> float:
    """How often the ticker looks for due renewals: each second, or an eighth of the certificate
    lifetime when that is shorter."""
    return min(ROTATION_TICK_SECONDS, certificate_ttl_seconds / 8)


async def renew_forever(
    tick: float,
    rotators: Callable[[], Iterable[tuple[str, Rotator]]],
    datastores: Callable[[], object],
    watch: Callable[[], object] | None = None,
) -> None:
    """Renew every identity that is due, every `tick` seconds, until cancelled. `rotators` is
    asked anew at each tick (who is renewed may change while the sandbox runs); `datastores`
    (blocking) runs in a worker thread; `watch` (quick, on the loop) then checks whether files
    derived from the CA and the signing keys must be rewritten (`trustfiles.TrustFileWatch`)."""
    while True:
        await asyncio.sleep(tick)
        for name, rotator in list(rotators()):
            try:
                rotator.tick()
            except Exception as exc:
                log.error("renewing %s failed; retrying:\n%s", name, scrubbed_traceback(exc))
        try:
            await asyncio.to_thread(datastores)
        except Exception as exc:
            log.error(
                "renewing a datastore certificate failed; retrying:\n%s", scrubbed_traceback(exc)
            )
        if watch is not None:
            try:
                watch()
            except Exception as exc:
                log.error(
                    "rewriting the trust files failed; retrying:\n%s", scrubbed_traceback(exc)
                )
