"""Token revocation (RFC 7009) that takes effect at once, by push.

The token service holds the authoritative `RevocationList`. Every gateway holds its own mirror, a
second `RevocationList` subscribed to the first: `revoke()` calls each subscriber synchronously
before it returns, so a revoked token is refused by the very next request — nothing waits for the
token to expire or for a poll. Each `RevocationEvent` carries the monotonic time of the
revocation, so a mirror can measure how long propagation took.

Entries are kept until their token's `exp` plus a `grace` period, then `prune()` may drop them:
by then the token is refused as expired anyway. `grace` must cover the validators' clock leeway,
or a revoked token could come back to life in the seconds when it is expired but still accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count

from trustproof.clock import Clock
from trustproof.scrub import scrubbed_traceback

logger = logging.getLogger("trustproof.tokens")

DEFAULT_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class RevocationEvent:
    """One revocation: which token (`jti`), until when it matters (`exp`), and when it happened.

    `monotonic` is the revoking side's `clock.monotonic()`, for measuring propagation time with
    the same clock.
    """

    jti: str
    exp: datetime
    revoked_at: datetime
    monotonic: float


Subscriber = Callable[[RevocationEvent], object]  # whatever it returns is ignored


class RevocationList:
    """Revoked token ids, with synchronous push to subscribers."""

    def __init__(self, clock: Clock, *, grace: timedelta = DEFAULT_GRACE) -> None:
        if grace < timedelta(0):
            raise ValueError("grace cannot be negative")
        self._clock = clock
        self.grace = grace
        self._revoked: dict[str, RevocationEvent] = {}
        self._subscribers: dict[int, Subscriber] = {}
        self._ids = count()

    def revoke(self, jti: str, exp: datetime) -> bool:
        """Revoke the token `jti` (which expires at `exp`); True if it was not revoked before.

        Subscribers are called before this returns, only when the revocation is new.
        """
        if not isinstance(jti, str) or not jti:
            raise ValueError("revoke() needs the token's jti (a non-empty string)")
        if exp.tzinfo is None:
            raise ValueError("revoke() needs a timezone-aware expiry (use UTC)")
        event = RevocationEvent(jti, exp, self._clock.now(), self._clock.monotonic())
        return self.apply(event)

    def apply(self, event: RevocationEvent) -> bool:
        """Record a revocation made elsewhere (a mirror fed by the authoritative list).

        The event is kept as it came, so its timestamps still say when the revocation was made,
        and passed on to this list's own subscribers. An event already known is ignored and not
        passed on, which also ends any subscription loop.
        """
        if event.jti in self._revoked:
            return False
        self._revoked[event.jti] = event
        self._notify(event)
        return True

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` with every future revocation; returns the function that unsubscribes.

        A subscriber that raises is logged and does not stop the others. Unsubscribing twice is
        harmless.
        """
        handle = next(self._ids)
        self._subscribers[handle] = callback

        def unsubscribe() -> None:
            self._subscribers.pop(handle, None)

        return unsubscribe

    def follow(self, source: RevocationList) -> Callable[[], None]:
        """Mirror `source`: take what it has revoked so far, then every new revocation at once.

        Returns the function that stops following. Entries already taken stay.
        """
        unsubscribe = source.subscribe(self.apply)
        for event in source.events():
            self.apply(event)
        return unsubscribe

    def events(self) -> tuple[RevocationEvent, ...]:
        """Every revocation still held, oldest first (e.g. to bring a new mirror up to date)."""
        return tuple(self._revoked.values())

    def prune(self) -> list[str]:
        """Drop entries whose token expired more than `grace` ago; return their jtis."""
        horizon = self._clock.now() - self.grace
        gone = [jti for jti, event in self._revoked.items() if event.exp <= horizon]
        for jti in gone:
            del self._revoked[jti]
        return gone

    def __len__(self) -> int:
        return len(self._revoked)

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    def __repr__(self) -> str:
        return f"RevocationList(revoked={len(self._revoked)}, subscribers={len(self._subscribers)})"

    def _notify(self, event: RevocationEvent) -> None:
        for callback in tuple(self._subscribers.values()):  # a callback may (un)subscribe
            try:
                callback(event)
            except Exception as exc:
                logger.error(
                    "a revocation subscriber failed for jti %s; continuing:\n%s",
                    event.jti,
                    scrubbed_traceback(exc),
                )
