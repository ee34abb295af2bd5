"""The spec as an immutable, typed model: what `trustproof.yaml` says, after validation.

Field docs (`doc=`) become the descriptions in `trustproof schema`. Everything here is a frozen
dataclass or an immutable mapping; a `Spec` never changes after `load_spec` returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from trustproof.spec.values import (
    Command,
    Count,
    Duration,
    EnvName,
    EnvValue,
    HeaderName,
    LoopbackHost,
    Name,
    Port,
    Privilege,
    RelPath,
    Route,
    RouteRef,
    TableName,
    TrustDomain,
)

EMPTY: Mapping[Any, Any] = MappingProxyType({})
# Mapping keys are plain `str` for callers (lookups by any string type-check) and validated by the
# value type named in the annotation.
NameKey = Annotated[str, Name]
TableKey = Annotated[str, TableName]
EnvKey = Annotated[str, EnvName]
ReportFormat = Literal["junit", "html", "md", "json"]
Requirement = Literal["required", "optional"]
Grants = Mapping[TableKey, tuple[Privilege, ...]]


def empty() -> Mapping[Any, Any]:
    return EMPTY


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field carrying its documentation (shown by `trustproof schema`)."""
    return field(metadata={"doc": text}, **kwargs)


@dataclass(frozen=True)
class Ttl:
    certificate: Duration = doc("Lifetime of X.509-SVIDs.", default=Duration(300))
    token: Duration = doc("Lifetime of access tokens.", default=Duration(120))


@dataclass(frozen=True)
class Persona:
    roles: tuple[Name, ...] = doc("Roles, seen by Cedar as parent entities.", default=())
    kind: Literal["human", "ci"] = doc("A person, or an automation identity.", default="human")
    description: str = doc("Free text shown in reports.", default="")


@dataclass(frozen=True)
class HealthCheck:
    kind: Literal["http", "tcp"] = doc(
        "HTTP GET of `path` (2xx = ready) or a TCP connect.", default="http"
    )
    path: str = doc("Path for the HTTP check.", default="/healthz")
    timeout: Duration = doc("How long to wait for readiness.", default=Duration(10))


@dataclass(frozen=True)
class Ingress:
    gateway: Literal["trustproof", "none"] = doc(
        "'trustproof' puts an enforcing gateway in front; 'none' means the service terminates "
        "mTLS itself and is probed directly.",
        default="trustproof",
    )
    client_cert: Requirement = doc(
        "Whether callers must present a client certificate.", default="required"
    )
    token: Requirement = doc("Whether callers must present an access token.", default="required")
    port: Port | None = doc(
        "Port callers connect to (default: chosen by the sandbox).", default=None
    )


@dataclass(frozen=True)
class Template:
    src: RelPath = doc("Jinja2 template, relative to the spec file.")
    dest: RelPath = doc("Where the rendered file goes, relative to the service's run directory.")


@dataclass(frozen=True)
class Service:
    command: Command = doc("Command line that starts the service.")
    port: Port = doc("Port the service itself listens on.")
    host: LoopbackHost = doc("Loopback address to listen on.", default=LoopbackHost("127.0.0.1"))
    cwd: RelPath | None = doc("Working directory, relative to the spec file.", default=None)
    env: Mapping[EnvKey, EnvValue] = doc("Extra environment variables.", default_factory=empty)
    health: HealthCheck = doc("Readiness check.", default=HealthCheck())
    ingress: Ingress = doc("What callers must present.", default=Ingress())
    routes: tuple[Route, ...] = doc(
        "Operations the service offers, as 'METHOD /path/{param}'.", default=()
    )
    calls: tuple[Name, ...] = doc(
        "Services this one calls (each gets an egress proxy).", default=()
    )
    roles: tuple[Name, ...] = doc("Roles carried in this workload's tokens.", default=())
    templates: tuple[Template, ...] = doc(
        "Config files rendered with the sandbox's values.", default=()
    )
    reload: Literal["none", "sighup", "restart"] = doc(
        "How the service learns about rotated certificates.", default="none"
    )
    other_ports: tuple[Port, ...] = doc(
        "Other ports the service may also listen on (metrics, admin); any other listening "
        "socket of its processes is an undeclared listener (`surface.undeclared-listener`).",
        default=(),
    )


@dataclass(frozen=True)
class Datastore:
    engine: Literal["postgresql"] = doc("Datastore engine.", default="postgresql")
    database: Name | None = doc("Database name (default: the datastore's name).", default=None)
    host: LoopbackHost = doc("Loopback address to listen on.", default=LoopbackHost("127.0.0.1"))
    port: Port | None = doc("Port (default: chosen by the sandbox).", default=None)
    schema: RelPath | None = doc("SQL run once to create the schema.", default=None)
    seed: RelPath | None = doc("SQL run after the schema to load test data.", default=None)
    roles: Mapping[NameKey, Grants] = doc(
        "One login role per calling workload (certificate CN = role): table -> privileges.",
        default_factory=empty,
    )


@dataclass(frozen=True)
class Policies:
    files: tuple[RelPath, ...] = doc("Cedar policy files enforced by the gateways.", default=())
    schema: RelPath | None = doc("Cedar schema the policies are validated against.", default=None)


@dataclass(frozen=True)
class Access:
    services: Mapping[NameKey, Mapping[NameKey, tuple[RouteRef, ...]]] = doc(
        "service -> caller -> routes the caller must be allowed ('*' = every route).",
        default_factory=empty,
    )
    datastores: Mapping[NameKey, Mapping[NameKey, Grants]] = doc(
        "datastore -> calling workload -> table -> privileges it must have.", default_factory=empty
    )


@dataclass(frozen=True)
class Probes:
    select: tuple[str, ...] = doc("Probe ids or glob patterns to run.", default=("*",))
    deselect: tuple[str, ...] = doc("Probe ids or glob patterns to skip.", default=())


@dataclass(frozen=True)
class Reports:
    dir: RelPath = doc(
        "Report directory, relative to the spec file.", default=RelPath("trustproof-reports")
    )
    formats: tuple[ReportFormat, ...] = doc(
        "Formats to write.", default=("junit", "html", "md", "json")
    )


@dataclass(frozen=True)
class Limits:
    handshake_timeout: Duration = doc(
        "A TLS handshake not finished within this is aborted.", default=Duration(10)
    )
    header_timeout: Duration = doc(
        "The whole request head (not each line: slowloris) must arrive within this of its first "
        "byte, or of the connection being ready; else the connection is closed.",
        default=Duration(10),
    )
    idle_timeout: Duration = doc(
        "A keep-alive connection with no request in progress is closed after this.",
        default=Duration(60),
    )
    max_requests: Count = doc(
        "Requests per connection; the answer to the last says `Connection: close`.",
        default=Count(1000),
    )
    max_connections: Count = doc(
        "Connections per listener, TLS handshakes included; one more is closed at accept.",
        default=Count(512),
    )


@dataclass(frozen=True)
class Spec:
    """A whole `trustproof.yaml`. `path` is where it was read from (not a YAML key)."""

    trust_domain: TrustDomain = doc("SPIFFE trust domain of every identity in the sandbox.")
    version: Literal[1] = doc("Spec format version.", default=1)
    ttl: Ttl = doc("Credential lifetimes.", default=Ttl())
    personas: Mapping[NameKey, Persona] = doc(
        "People and CI identities that call services.", default_factory=empty
    )
    services: Mapping[NameKey, Service] = doc("The workloads under test.", default_factory=empty)
    datastores: Mapping[NameKey, Datastore] = doc(
        "Databases the workloads use.", default_factory=empty
    )
    policies: Policies = doc("Cedar policies the gateways enforce.", default=Policies())
    access: Access = doc(
        "The expected access matrix (the oracle): everything not listed must be refused.",
        default=Access(),
    )
    limits: Limits = doc(
        "Connection limits of every gateway and egress proxy listener.", default=Limits()
    )
    probes: Probes = doc("Which probes run.", default=Probes())
    reports: Reports = doc("Where and how results are reported.", default=Reports())
    path: Path = field(default=Path("trustproof.yaml"), metadata={"internal": True})
    identity_headers: tuple[HeaderName, ...] = doc(
        "Forwarded-identity headers your services or proxies use beyond the well-known ones: "
        "the gateways strip them and the probes forge them.",
        default=(),
    )

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the spec, made absolute against the spec file's directory."""
        return (self.base_dir / relative).resolve()

    @property
    def callers(self) -> tuple[str, ...]:
        """Every identity that can call something: workloads, then personas."""
        return (*self.services, *self.personas)

    def spiffe_id(self, name: str) -> str:
        return f"spiffe://{self.trust_domain}/{name}"
