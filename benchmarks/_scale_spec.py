"""Generated specs at a multiple of the shop, for `benchmarks/scale.py`.

Size ``f`` has ``3·√f`` services and ``3·√f`` personas (the shop has 3 and 3), four routes per
service (the shop has 12 routes on 3 services), so the service matrix (callers x routes) is about
``f`` times the shop's. A third of the services are the edge (personas call them, client
certificate optional); every service calls the next two. Each service is the same small program
(`SERVICE`), built like the shop's services on the standard library and honouring trustproof's
contract with `trustproof.middleware.wsgi`. No datastore or external dependency: those cost the
same at every size.

The policies are written the way teams write them when a spec grows: one permit per granted
operation (role-scoped for personas, ``resource in Service`` with a ``when`` for the persona's
reads, principal-scoped for workloads), an explicit-deny forbid per (persona, internal service)
and per (workload, service it does not call), a DELETE forbid per service and one unscoped
forbid every request meets — about 32·f policies (512 at 16x).
"""

from __future__ import annotations

import json
import math
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml

SERVICE = '''"""A generated service: answers its declared routes, honours trustproof's contract."""

from __future__ import annotations

import json
import os
import re
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from trustproof.middleware.wsgi import TrustproofMiddleware, caller_of

NAME = sys.argv[1]
ROUTES = [
    (method, re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", path) + "$"))
    for method, _, path in (route.partition(" ") for route in json.loads(sys.argv[2]))
]


def app(environ, start_response):
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    caller = caller_of(environ)
    matched = [m for m, pattern in ROUTES if pattern.match(path)]
    if method in matched:
        status, body = ("201 Created" if method == "POST" else "200 OK"), {"by": NAME}
        body["caller"] = caller.principal
    elif matched:
        status, body = "405 Method Not Allowed", {"error": "method not allowed"}
    else:
        status, body = "404 Not Found", {"error": "not found"}
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    start_response(status, headers)
    return [data]


class RawTargetHandler(WSGIRequestHandler):
    def get_environ(self):
        environ = super().get_environ()
        environ["REQUEST_URI"] = self.path
        return environ

    def log_message(self, *args):
        pass


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    host, port = os.environ["TRUSTPROOF_HOST"], int(os.environ["TRUSTPROOF_PORT"])
    with make_server(
        host, port, TrustproofMiddleware(app), server_class=Server, handler_class=RawTargetHandler
    ) as server:
        server.serve_forever()
'''


@dataclass(frozen=True)
class Generated:
    factor: int
    path: Path  # the trustproof.yaml
    services: int
    personas: int
    routes: int
    policies: int


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 now (all held open until all are chosen)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _routes(service: str) -> list[str]:
    base = f"/{service}-items"
    return [f"GET {base}", f"GET {base}/{{id}}", f"POST {base}", f"DELETE {base}/{{id}}"]


class _Policies:
    """The access oracle and the Cedar policies of a generated spec, written side by side."""

    def __init__(self, services: list[str], personas: list[str], edge: list[str]) -> None:
        self.services, self.personas, self.edge = services, personas, edge
        self.calls = {s: services[i + 1 : i + 3] for i, s in enumerate(services)}
        self.access: dict[str, dict[str, list[str]]] = {s: {} for s in services}
        self.texts: list[str] = []

    def permit(self, pid: str, principal: str, route: str, service: str) -> None:
        method, _, path = route.partition(" ")
        self.texts.append(
            f'@id("{pid}")\npermit (principal {principal}, action == Action::"{method}",\n'
            f'        resource == Route::"{service} {path}");\n'
        )

    def forbid(self, pid: str, scope: str, condition: str = "") -> None:
        self.texts.append(f'@id("{pid}")\nforbid ({scope}){condition};\n')

    def personas_grants(self) -> None:
        for i, persona in enumerate(self.personas):
            role = f'in Role::"role-{persona}"'
            home, other = self.edge[i % len(self.edge)], self.edge[(i + 1) % len(self.edge)]
            reads = [r for r in _routes(home) if r.startswith("GET")]
            self.access[home][persona] = [*reads, _routes(home)[2]]
            paths = " || ".join(f'resource == Route::"{home} {r[4:]}"' for r in reads)
            self.texts.append(
                f'@id("{persona}-reads-{home}")\n'
                f'permit (principal {role}, action == Action::"GET",\n'
                f'        resource in Service::"{home}")\nwhen {{ {paths} }};\n'
            )
            self.permit(f"{persona}-posts-{home}", role, f"POST {reads[0][4:]}", home)
            if other != home:
                self.access[other][persona] = [_routes(other)[0]]
                self.permit(f"{persona}-lists-{other}", role, _routes(other)[0], other)
            for service in self.services:
                if persona not in self.access[service]:
                    self.forbid(
                        f"{persona}-never-{service}",
                        f'principal == Persona::"{persona}", action, '
                        f'resource in Service::"{service}"',
                    )

    def workload_grants(self) -> None:
        for caller, callees in self.calls.items():
            for callee in callees:
                granted = _routes(callee)[:3]
                self.access[callee][caller] = granted
                for k, route in enumerate(granted):
                    self.permit(f"{caller}-{callee}-{k}", f'== Workload::"{caller}"', route, callee)
            for service in self.services:
                if service != caller and service not in callees:
                    self.forbid(
                        f"{caller}-not-{service}",
                        f'principal == Workload::"{caller}", action, '
                        f'resource in Service::"{service}"',
                    )

    def service_rules(self, total: int) -> None:
        for service in self.services:
            self.forbid(
                f"nobody-deletes-{service}",
                f'principal, action == Action::"DELETE", resource in Service::"{service}"',
            )
            for route in _routes(service):
                method, _, path = route.partition(" ")
                self.forbid(
                    f"{service}-{method}-{path}-workloads-need-a-certificate",
                    f'principal is Workload, action == Action::"{method}",\n'
                    f'        resource == Route::"{service} {path}"',
                    "\nunless { context.client_cert }",
                )
        everything = [(s, r) for s in self.services for r in _routes(s)]
        for k in range(total - len(self.texts) - 1):
            service, route = everything[k % len(everything)]
            method, _, path = route.partition(" ")
            self.forbid(
                f"suspended-{k}",
                f'principal, action == Action::"{method}", resource == Route::"{service} {path}"',
                f'\nwhen {{ context.token_roles.contains("suspended-{k // len(everything)}") }}',
            )
        self.forbid(
            "only-sane-hours",
            "principal, action, resource",
            "\nunless { context.hour_utc >= 0 && context.hour_utc <= 23 }",
        )


def generate(directory: Path, factor: int) -> Generated:
    """Write a spec `factor` times the shop into `directory` (created); return its figures."""
    side = max(1, round(3 * math.sqrt(factor)))
    services = [f"svc{i:02d}" for i in range(side)]
    personas = [f"user{i:02d}" for i in range(side)]
    edge = services[: max(1, math.ceil(side / 3))]
    written = _Policies(services, personas, edge)
    written.personas_grants()
    written.workload_grants()
    written.service_rules(32 * factor)
    policies, access, calls = written.texts, written.access, written.calls
    ports = dict(zip(services, free_ports(len(services)), strict=True))

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policies").mkdir(exist_ok=True)
    (directory / "policies" / "generated.cedar").write_text("\n".join(policies))
    (directory / "service.py").write_text(SERVICE)
    spec = {
        "version": 1,
        "trust_domain": "scale.test",
        "personas": {p: {"roles": [f"role-{p}"]} for p in personas},
        "services": {
            s: {
                "command": ["python", "service.py", s, json.dumps(_routes(s))],
                "port": ports[s],
                "health": {"kind": "tcp"},
                "ingress": (
                    {"client_cert": "optional", "token": "required"}
                    if s in edge
                    else {"client_cert": "required", "token": "required"}
                ),
                "routes": _routes(s),
                "calls": calls[s],
            }
            for s in services
        },
        "policies": {"files": ["policies/generated.cedar"]},
        "access": {"services": {s: grants for s, grants in access.items() if grants}},
        "probes": {"select": ["*"]},
        "reports": {"dir": "reports", "formats": ["json"]},
    }
    path = directory / "trustproof.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, width=100))
    return Generated(factor, path, len(services), len(personas), 4 * len(services), len(policies))
