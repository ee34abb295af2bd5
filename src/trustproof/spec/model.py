"""The spec as an immutable, typed model: what `trustproof.yaml` says, after validation.

Field docs (`doc=`) become the descriptions in `trustproof schema`. Everything here is a frozen
dataclass or an immutable mapping; a `Spec` never changes after `load_spec` returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from trustproof.spec.answers import HeaderRule, JsonRule, StatusCodes
from trustproof.spec.auditing import Alerts, AuditSettings
from trustproof.spec.chaos import Chaos
from trustproof.spec.data import ConsistencySettings, DataSettings
from trustproof.spec.dependencies import Dependency
from trustproof.spec.fields import doc, empty
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

# Mapping keys are plain `str` for callers (lookups by any string type-check) and validated by the
# value type named in the annotation.
NameKey = Annotated[str, Name]
TableKey = Annotated[str, TableName]
EnvKey = Annotated[str, EnvName]
RouteKey = Annotated[str, RouteRef]
ReportFormat = Literal["junit", "html", "md", "json", "codequality"]
Requirement = Literal["required", "optional"]
Grants = Mapping[TableKey, tuple[Privilege, ...]]


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
    revocation: Literal["none", "introspection", "crl"] = doc(
        "With gateway 'none': how the service learns of revocations. 'introspection': it asks "
        "the token service (RFC 7662) about each token, so a revoked token is refused at once; "
        "'crl': it checks client certificates against the CRL file (reloaded when it changes). "
        "lifecycle.revocation-propagation runs against it only when declared.",
        default="none",
    )


@dataclass(frozen=True)
class Template:
    src: RelPath = doc("Jinja2 template, relative to the spec file.")
    dest: RelPath = doc("Where the rendered file goes, relative to the service's run directory.")


@dataclass(frozen=True)
class Served:
    """Positive evidence that a service's handler ran; every key given must hold."""

    status: StatusCodes | None = doc(
        "Status codes of a served answer (one or a list).", default=None
    )
    header: HeaderRule | None = doc(
        "A header a served answer carries: a name (any value, any case) or {name: value}.",
        default=None,
    )
    body: str | None = doc("Text a served answer's body contains.", default=None)
    json: JsonRule | None = doc(
        "JSON Pointer (RFC 6901) -> the value a served JSON answer holds there.", default=None
    )


@dataclass(frozen=True)
class Expect(Served):
    """How to tell that a `gateway: none` service's handler ran (default: a 2xx/3xx that is not
    a known refusal); per route where routes answer differently."""

    routes: Mapping[RouteKey, Served] = doc(
        "'METHOD /path' (a declared route) -> its own evidence, instead of the service-wide one.",
        default_factory=empty,
    )


@dataclass(frozen=True)
class Refuses:
    """How a `gateway: none` service refuses, by stage: the statuses it answers. Declared, the
    refusing stage becomes part of the verdict (`wrong-stage`); undeclared, it is evidence only."""

    tls: StatusCodes | None = doc(
        "Statuses refusing the client certificate or transport, e.g. [400, 495].", default=None
    )
    authn: StatusCodes | None = doc("Statuses refusing the token, e.g. 401.", default=None)
    authz: StatusCodes | None = doc(
        "Statuses refusing the caller's access, e.g. [403, 404].", default=None
    )


@dataclass(frozen=True)
class Service:
    json_schema_extra: ClassVar[Mapping[str, Any]] = {
        "oneOf": [{"required": ["command"]}, {"required": ["image"]}]
    }
    command: Command = doc(
        "Command line that starts the service (or `image`).", default=Command(()), kw_only=True
    )
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
        "Services this one calls, and the external dependencies it calls (each gets an egress "
        "proxy).",
        default=(),
    )
    roles: tuple[Name, ...] = doc("Roles carried in this workload's tokens.", default=())
    templates: tuple[Template, ...] = doc(
        "Config files rendered with the sandbox's values.", default=()
    )
    reload: Literal["none", "sighup", "restart"] = doc(
        "How the service learns that its files changed: its rotated certificate, and (with "
        "gateway 'none') new signing keys or CRL.",
        default="none",
    )
    expect: Expect | None = doc(
        "gateway: none only: how an answer shows the handler ran (status, header, body, json; "
        "per route under routes).",
        default=None,
    )
    refuses: Refuses | None = doc(
        "gateway: none only: the statuses the service refuses with, by stage (tls, authn, "
        "authz); declared, the refusing stage is checked.",
        default=None,
    )
    other_ports: tuple[Port, ...] = doc(
        "Other ports the service may also listen on (metrics, admin); any other listening "
        "socket of its processes is an undeclared listener (`surface.undeclared-listener`).",
        default=(),
    )
    image: str | None = doc(
        "Container image to run instead of a command (Docker Engine API: Docker, or Podman's "
        "compatible service); exactly one of command and image.",
        default=None,
    )
    args: Command | None = doc(
        "image only: the container's command (default: the image's own).", default=None
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
    hba: RelPath | None = doc(
        "Jinja2 template of the team's own pg_hba.conf (replaces the sandbox's rules; the "
        "admin's unix-socket line stays first).",
        default=None,
    )
    conf: RelPath | None = doc(
        "Jinja2 template of the team's postgresql.conf additions (appended to the sandbox's).",
        default=None,
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
        "Formats to write into `dir`: junit (report.junit.xml), html (report.html), md "
        "(report.md), json (results.json), codequality (codequality.json, GitLab's Code "
        "Quality report pointing at spec lines).",
        default=("junit", "html", "md", "json"),
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
class Ports:
    first: Port | None = doc("First port of the range (with `last`).", default=None)
    last: Port | None = doc("Last port of the range (with `first`).", default=None)


@dataclass(frozen=True)
class ForeignCa:
    cert: RelPath = doc("PEM certificate of a CA every boundary must refuse.")
    key: RelPath | None = doc(
        "Its PEM private key (unencrypted): with it the probe presents a certificate the CA "
        "signed; without, only the CA names a server advertises are checked.",
        default=None,
    )


@dataclass(frozen=True)
class TlsSettings:
    foreign_cas: tuple[ForeignCa, ...] = doc(
        "CAs no boundary may trust (e.g. the team's production or staging CA).", default=()
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
    ports: Ports = doc(
        "Where the sandbox's own listeners go (token service; gateways, egress proxies and "
        "datastores without a declared port): a range, for CI runners and firewalls that "
        "allow only some ports. Default: ports the kernel chooses.",
        default=Ports(),
    )
    probes: Probes = doc("Which probes run.", default=Probes())
    reports: Reports = doc("Where and how results are reported.", default=Reports())
    path: Path = field(default=Path("trustproof.yaml"), metadata={"internal": True})
    tls: TlsSettings = doc("What the TLS probes check beyond the sandbox.", default=TlsSettings())
    identity_headers: tuple[HeaderName, ...] = doc(
        "Forwarded-identity headers your services or proxies use beyond the well-known ones: "
        "the gateways strip them and the probes forge them.",
        default=(),
    )
    chaos: Chaos = doc(
        "Trust-chaos experiments: faults injected on purpose, each with its expected behaviour.",
        default=Chaos(),
    )
    data: DataSettings | None = doc(
        "Production-shaped test data: samples scrubbed by rules and seeded.", default=None
    )
    consistency: ConsistencySettings | None = doc(
        "Compare two environments' datastores.", default=None
    )
    dependencies: Mapping[NameKey, Dependency] = doc(
        "External APIs services call, mocked inside the sandbox or reached at exactly one "
        "staging host:port, always through the caller's egress proxy (which adds the "
        "credentials).",
        default_factory=empty,
    )
    backend: Literal["auto", "local", "isolated"] = doc(
        "Where the services run: `isolated` — each in its own network namespace that only "
        "reaches loopback (root, iproute2, nftables); `local` — plain processes on this host; "
        "`auto` — isolated where the host allows it, else local with a notice. Overridden by "
        "`--backend` and TRUSTPROOF_BACKEND.",
        default="auto",
    )
    audit: AuditSettings = doc(
        "The run's encrypted, tamper-evident audit log.", default=AuditSettings()
    )
    alerts: Alerts = doc(
        "Alerts on unexpected access and failures, and where they go.", default=Alerts()
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
