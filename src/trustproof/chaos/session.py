"""One kept-alive session with a token that is about to expire: used until it is refused."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from trustproof.chaos.scenario import Recorder, ScenarioEnv, call, shown
from trustproof.probes.model import Result
from trustproof.probes.presentation import Presentation

EXPIRY_POLL_S = 0.025
EXPIRY_MAX_POLLS = 200
EXPIRY_GIVE_UP_S = 1.0  # after the end of validity


@dataclass
class Session:
    accepted: int = 0
    opened: int = 0  # connections the client opened
    late_accept: bool = False
    refusal: tuple[Result, float] | None = None  # the first refusal, and when it came back


async def use_until_refused(
    env: ScenarioEnv, rec: Recorder, what: Presentation, end: float
) -> Session:
    """Send `what` every `EXPIRY_POLL_S` on one kept-alive connection until it is refused, an
    acceptance comes after `end` (epoch seconds, sandbox clock), or `EXPIRY_GIVE_UP_S` past it."""
    clock = env.view.clock
    used = Session()
    async with env.view.channel() as channel:
        for _ in range(EXPIRY_MAX_POLLS):
            now = clock.now().timestamp()
            if now > end + EXPIRY_GIVE_UP_S:
                break
            result = await call(env, what, channel=channel)
            used.opened = channel.connections_opened
            if result.outcome != "allowed":
                used.refusal = (result, clock.now().timestamp())
                break
            used.accepted += 1
            if used.accepted == 1:
                rec.event(f"first request on the kept-alive connection: {shown(result)}")
            if now >= end:
                used.late_accept = True
                rec.event(f"accepted {now - end:.3f} s after the end of validity")
                break
            await asyncio.sleep(EXPIRY_POLL_S)
    return used
