"""The sandbox's datastores: started before the services, provisioned from the spec, and the
connection settings each calling workload receives (certificate authentication only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustproof.fabric import TrustFabric
from trustproof.sandbox.backend import PidRegistry
from trustproof.sandbox.rundir import RunDir
from trustproof.spec.model import Spec


@dataclass(frozen=True)
class DatastoreEndpoint:
    url: str
    pid: int | None
    dsn: str


class Datastores:
    def __init__(self, spec: Spec, run: RunDir, registry: PidRegistry) -> None:
        self.spec = spec
        self.run = run
        self.registry = registry
        self.servers: dict[str, object] = {}

    async def start(self, fabric: TrustFabric) -> None:
        if self.spec.datastores:
            raise NotImplementedError("datastores are wired up next")

    async def stop(self) -> None:
        self.servers.clear()

    def dsns_for(self, workload: str, cert: Path, key: Path, bundle: Path) -> Mapping[str, str]:
        return {}

    def endpoints(self) -> Mapping[str, DatastoreEndpoint]:
        return {}
