"""Where a running sandbox's boundaries can be reached: the `Endpoint` records the controller
publishes (in its state file and to `trustproof status`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    """Where a boundary can be reached."""

    name: str
    kind: str  # "service" | "datastore" | "token-service"
    url: str  # what callers use: the gateway, or the service itself with gateway: none
    direct_url: str = ""  # the service's own port (the bypass probe aims here)
    pid: int | None = None
    egress: Mapping[str, str] = field(default_factory=dict)  # callee -> egress proxy URL
    dsn: str = ""  # datastores: libpq settings without credentials
    # services: dependency -> its egress proxy URL; dependencies: calling service -> that URL
    dependencies: Mapping[str, str] = field(default_factory=dict)
