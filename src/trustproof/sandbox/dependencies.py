"""The spec's external dependencies in a running sandbox: their credentials, their mocks and the
egress proxy of each calling service for each of them.

Order (the controller's): `check_credentials()` before anything starts (a real dependency's
variable must be set: the error names the variable, never a value); `start()` after the
datastores — each mock (the response table served here, or the team's mock command started like
a service and waited for on its port), then one `DependencyProxy` per (service, dependency) it
calls; `stop()` in reverse. Each service is given `TRUSTPROOF_DEPENDENCY_<NAME>_URL`: its proxy,
plain HTTP on loopback.

Credentials: the value of the variable `credentials.env` of the trustproof process. For a mock,
when the variable is not set, a random value for this run: the mock and the proxy share it, and
nothing else has it (a mock command gets it in that same variable, to check it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustproof.errors import SandboxError
from trustproof.gateway.config import connection_limits
from trustproof.gateway.dependency import DependencyProxy, Upstream
from trustproof.plan import dependency_variable
from trustproof.sandbox.backend import Backend, Handle, ProcessSpec
from trustproof.sandbox.mock_dependency import MockServer
from trustproof.sandbox.ports import PortPool
from trustproof.sandbox.readiness import ensure_free, wait_ready
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.services import PASSED_THROUGH
from trustproof.scrub import Secret
from trustproof.spec.dependencies import Dependency
from trustproof.spec.mock_table import MockRecord
from trustproof.spec.model import HealthCheck, Spec
from trustproof.spec.values import Duration

MOCK_READY_TIMEOUT = Duration(10)


def dependency_calls(spec: Spec, service: str) -> tuple[str, ...]:
    """The dependencies `service` lists in `calls`, in its order."""
    return tuple(c for c in spec.services[service].calls if c in spec.dependencies)


def read_credentials(
    name: str, dependency: Dependency, environ: Mapping[str, str]
) -> Secret[str] | None:
    """The credentials' value for `name` (None when it declares none); raises `SandboxError`
    naming the variable when a real dependency's is not set."""
    creds = dependency.credentials
    if creds is None:
        return None
    value = environ.get(creds.env, "")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise SandboxError(
            f"dependency {name!r}: the value of {creds.env} holds a control character (a line "
            "break?), which cannot go into an HTTP header",
            f"set {creds.env} to the bare credential, without a trailing newline",
        )
    if value:
        return Secret(value)
    if dependency.mode == "mock":
        return Secret(secrets.token_urlsafe(32))
    raise SandboxError(
        f"dependency {name!r}: the environment variable {creds.env} (its credentials for "
        f"the {creds.header} header) is not set",
        f"export {creds.env}=... before starting the sandbox; the value is read from the "
        "environment only, never from the spec",
    )


class _PrivateEnv(dict[str, str]):
    """A mock command's environment: it holds the credentials, so its repr names keys only."""

    def __repr__(self) -> str:
        return f"<environment: {', '.join(sorted(self))}>"


@dataclass
class _Mock:
    url: str
    server: MockServer | None = None  # the response table, served here
    handle: Handle | None = None  # the team's mock command


class Dependencies:
    def __init__(
        self, spec: Spec, run: RunDir, ports: PortPool, environ: Mapping[str, str] | None = None
    ) -> None:
        self.spec = spec
        self.run = run
        self.ports = ports
        self.environ = os.environ if environ is None else environ
        self.credentials: dict[str, Secret[str] | None] = {}
        self.mocks: dict[str, _Mock] = {}
        self.proxies: dict[tuple[str, str], DependencyProxy] = {}
        self._backend: Backend | None = None

    def check_credentials(self) -> None:
        """Read every dependency's credentials now (before anything starts)."""
        for name, dependency in self.spec.dependencies.items():
            self.credentials[name] = read_credentials(name, dependency, self.environ)
            mock = dependency.mock
            if dependency.mode == "mock" and mock is not None and mock.port is not None:
                ensure_free("127.0.0.1", int(mock.port), f"the mock of dependency {name!r}")

    async def start(self, backend: Backend) -> None:
        if not self.credentials and self.spec.dependencies:
            self.check_credentials()
        self._backend = backend
        for name, dependency in self.spec.dependencies.items():
            if dependency.mode == "mock":
                self.mocks[name] = await self._start_mock(name, dependency, backend)
        limits = connection_limits(self.spec)
        for service in self.spec.services:
            for name in dependency_calls(self.spec, service):
                dependency = self.spec.dependencies[name]
                proxy = DependencyProxy(
                    caller=service,
                    upstream=self.upstream(name),
                    credentials=self.credentials.get(name),
                    ca_file=self.spec.resolve(dependency.ca) if dependency.ca else None,
                    limits=limits,
                )
                self.proxies[(service, name)] = proxy
                await proxy.start(self.ports.bind("127.0.0.1"))

    def upstream(self, name: str) -> Upstream:
        """Where the proxies for `name` connect: its mock, or exactly its declared host:port."""
        dependency = self.spec.dependencies[name]
        header = str(dependency.credentials.header) if dependency.credentials else ""
        if dependency.mode == "mock":
            connect = self.mocks[name].url
        else:
            host = f"[{dependency.host}]" if ":" in dependency.host else dependency.host
            connect = f"{dependency.scheme}://{host}:{dependency.port}"
        return Upstream(
            name, dependency.host, int(dependency.port), dependency.scheme, connect, header
        )

    async def _start_mock(self, name: str, dependency: Dependency, backend: Backend) -> _Mock:
        mock = dependency.mock
        creds = dependency.credentials
        expected = self.credentials.get(name)
        if mock is None or creds is None or expected is None:  # refused by the spec checks
            raise SandboxError(f"dependency {name!r}: a mock needs mock and credentials")
        if mock.command is None:
            server = MockServer(
                name,
                mock.responses,
                str(creds.header),
                expected,
                limits=connection_limits(self.spec),
            )
            await server.start(self.ports.bind("127.0.0.1"))
            return _Mock(server.url, server=server)
        port = int(mock.port or 0)
        env = _PrivateEnv((k, self.environ[k]) for k in PASSED_THROUGH if k in self.environ)
        env.update(
            {
                "PATH": self.environ.get("PATH", "/usr/bin:/bin"),
                "TRUSTPROOF_DEPENDENCY": name,
                "TRUSTPROOF_HOST": "127.0.0.1",
                "TRUSTPROOF_PORT": str(port),
                "TRUSTPROOF_CREDENTIALS_HEADER": str(creds.header),
                "PYTHONUNBUFFERED": "1",
                str(creds.env): expected.reveal(),
            }
        )
        process = ProcessSpec(
            name, tuple(mock.command), self.spec.base_dir, env, self.run.service_log(name)
        )
        handle = await backend.start(process)
        mocked = _Mock(f"http://127.0.0.1:{port}", handle=handle)
        self.mocks[name] = mocked  # stopped with the others even if it never gets ready
        check = HealthCheck(kind="tcp", timeout=MOCK_READY_TIMEOUT)
        await wait_ready(name, "127.0.0.1", port, check, handle)
        return mocked

    def urls_for(self, service: str) -> dict[str, str]:
        """dependency -> `service`'s proxy URL for it."""
        return {d: self.proxies[(service, d)].url for d in dependency_calls(self.spec, service)}

    def env_for(self, service: str) -> dict[str, str]:
        return {dependency_variable(d): url for d, url in self.urls_for(service).items()}

    def records(self, name: str) -> tuple[MockRecord, ...]:
        """What `name`'s response-table mock saw (empty for a mock command or a real one)."""
        mock = self.mocks.get(name)
        return mock.server.records if mock is not None and mock.server is not None else ()

    def served_at(self, name: str) -> str:
        """Where `name` is: its mock's loopback URL, or the real endpoint."""
        if name in self.mocks:
            return self.mocks[name].url
        return self.upstream(name).connect_url

    def state(self) -> dict[str, Any]:
        """For `status`: each dependency, where it is served, and the proxies reaching it."""
        return {
            name: {
                "mode": dependency.mode,
                "host": f"{dependency.host}:{dependency.port}",
                "served_at": self.served_at(name),
                "proxies": {s: p.url for (s, d), p in self.proxies.items() if d == name},
            }
            for name, dependency in self.spec.dependencies.items()
        }

    async def stop(self) -> None:
        for proxy in reversed(list(self.proxies.values())):
            await proxy.close()
        self.proxies.clear()
        for mock in reversed(list(self.mocks.values())):
            if mock.server is not None:
                await mock.server.close()
            if mock.handle is not None and self._backend is not None:
                await self._backend.stop(mock.handle)
        self.mocks.clear()
