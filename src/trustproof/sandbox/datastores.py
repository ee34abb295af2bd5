"""The sandbox's datastores: started before the services, provisioned from the spec, and the
connection settings each calling workload receives (certificate authentication only)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from trustproof.data.samples import Seeding, seed_data
from trustproof.datastores import PostgresServer
from trustproof.datastores.errors import DatastoreError
from trustproof.fabric import TrustFabric
from trustproof.identity.rotation import renewal_time
from trustproof.sandbox.backend import PidRegistry
from trustproof.sandbox.ports import PortPool
from trustproof.sandbox.rundir import RunDir
from trustproof.spec.model import Spec


@dataclass(frozen=True)
class DatastoreEndpoint:
    url: str
    pid: int | None
    dsn: str  # libpq settings for a client, without certificate paths


class Datastores:
    def __init__(
        self, spec: Spec, run: RunDir, registry: PidRegistry, ports: PortPool | None = None
    ) -> None:
        self.spec = spec
        self.run = run
        self.registry = registry
        self.ports = ports or PortPool(None)
        self.servers: dict[str, PostgresServer] = {}
        self.seeding = Seeding()  # the scrubbed samples seeded, and the proof's evidence

    async def start(self, fabric: TrustFabric) -> None:
        """Start every datastore at once; each is recorded for `down` as soon as it runs."""
        if self.spec.data is not None and self.spec.data.samples:
            self.seeding = await asyncio.to_thread(seed_data, self.spec)
            if self.seeding.notice:
                logging.getLogger(__name__).warning("%s", self.seeding.notice)
        for name in self.spec.datastores:
            self.servers[name] = PostgresServer(
                self.spec,
                name,
                fabric.ca,
                self.run.datastore(name),
                log_path=self.run.log(name),
                certificate_ttl=fabric.certificate_ttl,
                port=None
                if self.spec.datastores[name].port
                else self.ports.free(str(self.spec.datastores[name].host)),
                samples=self.seeding.tables.get(name, ()),
            )
        await asyncio.gather(*(self._start(name, server) for name, server in self.servers.items()))

    async def _start(self, name: str, server: PostgresServer) -> None:
        await server.start_async()
        if server.pid is not None:
            self.registry.add(server.pid, f"postgres:{name}")
        if server.home is not None:  # its data (and key) live outside the run directory
            self.run.note_external(server.home)

    async def stop(self) -> None:
        servers = list(self.servers.values())
        self.servers.clear()
        await asyncio.gather(*(server.stop_async() for server in servers))

    def tick(self, ttl: timedelta, fraction: float = 0.5) -> list[str]:
        """Renew each server certificate that is `fraction` through its validity from issue
        (called with the SVID rotators; `ttl` is the lifetime it was issued with). Returns the
        datastores renewed; a failure is raised after the others were tried."""
        renewed, failure = [], None
        for name, server in list(self.servers.items()):
            current = server.server_svid
            now = server.ca.clock.now().timestamp()
            if current is None or now < renewal_time(current, ttl, fraction):
                continue
            try:
                server.rotate_server_certificate()
            except DatastoreError as exc:
                failure = failure or exc
                continue
            renewed.append(name)
        if failure is not None:
            raise failure
        return renewed

    def refresh_crl(self) -> None:
        """After a revocation: every server re-reads the CRL."""
        for server in self.servers.values():
            server.refresh_crl()

    def dsns_for(self, workload: str, cert: Path, key: Path, bundle: Path) -> Mapping[str, str]:
        """The datastores `workload` has a role in, with its libpq settings."""
        return {
            name: server.connection_settings(workload, cert=cert, key=key, bundle=bundle)
            for name, server in self.servers.items()
            if workload in self.spec.datastores[name].roles
        }

    def endpoints(self) -> Mapping[str, DatastoreEndpoint]:
        return {
            name: DatastoreEndpoint(server.url, server.pid, _public_dsn(server))
            for name, server in self.servers.items()
        }


def _public_dsn(server: PostgresServer) -> str:
    """The libpq settings every caller shares (each adds its user and certificate files)."""
    return f"host={server.host} port={server.port} dbname={server.database} sslmode=verify-full"
