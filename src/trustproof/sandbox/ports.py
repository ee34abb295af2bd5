"""Which ports the sandbox takes for what it opens itself: the token service, the gateways and
egress proxies without a declared port, the datastores without one.

By default the kernel chooses (port 0). A spec's ``ports: {first: …, last: …}`` confines them to
a range, for CI runners and firewalls that allow only some: each listener takes the next port of
the range nothing listens on (tried in order from a random start, so two sandboxes sharing a
range rarely collide), and a range with no free port left is a clear error, never a port outside.
"""

from __future__ import annotations

import random
import socket

from trustproof.errors import SandboxError
from trustproof.spec.model import Spec
from trustproof.tokenservice.server import bind_loopback


class PortPool:
    def __init__(self, ports: range | None, rng: random.Random | None = None) -> None:
        self.ports = ports
        self._rng = rng or random.Random()  # noqa: S311 (a port, not a secret)
        self._next = self._rng.randrange(len(ports)) if ports else 0

    @classmethod
    def of(cls, spec: Spec) -> PortPool:
        first, last = spec.ports.first, spec.ports.last
        return cls(range(int(first), int(last) + 1) if first and last else None)

    def bind(self, host: str) -> socket.socket:
        """A listening socket on `host`: on a port of the range, or one the kernel chooses."""
        if self.ports is None:
            return bind_loopback(host, 0)
        for port in self._candidates():
            try:
                return bind_loopback(host, port)
            except OSError:
                continue
        raise self._exhausted(host)

    def free(self, host: str) -> int | None:
        """A port of the range nothing listens on now, for a server that binds it itself
        (PostgreSQL); None without a range (the server's own default applies)."""
        if self.ports is None:
            return None
        for port in self._candidates():
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
                return port
        raise self._exhausted(host)

    def _candidates(self) -> list[int]:
        assert self.ports is not None  # noqa: S101 (callers checked)
        order = [self.ports[(self._next + i) % len(self.ports)] for i in range(len(self.ports))]
        self._next = (self._next + 1) % len(self.ports)
        return order

    def _exhausted(self, host: str) -> SandboxError:
        assert self.ports is not None  # noqa: S101
        return SandboxError(
            f"no free port left on {host} in {self.ports.start}-{self.ports.stop - 1} (`ports:`)",
            "widen the range, or stop what listens there",
        )
