"""Cross-checks of the ``dependencies:`` section (`trustproof.spec.dependencies`): what the types
alone cannot say — a mock has exactly one way of being served, a real endpoint has no mock, a CA
file exists, a mock command's port collides with nothing, no row of a response table is dead.
Reported through the `CrossChecker` like every other cross-check (file, line, field, hint)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustproof.spec.files import FileRefusal, locate

if TYPE_CHECKING:
    from trustproof.spec.crossref import CrossChecker
    from trustproof.spec.dependencies import Dependency
    from trustproof.spec.wording import Path as FieldPath


def check_dependencies(checker: CrossChecker) -> None:
    spec = checker.spec
    ports = _used_ports(checker)
    for name, dependency in spec.dependencies.items():
        if dependency.mode == "mock":
            _mock(checker, name, dependency, ports)
        else:
            _real(checker, name, dependency)


def _mock(checker: CrossChecker, name: str, dependency: Dependency, ports: dict[int, str]) -> None:
    base: FieldPath = ("dependencies", name)
    mock = dependency.mock
    if mock is None:
        checker.problem(
            base,
            f"dependency {name!r} has mode: mock but no mock",
            "add mock: {responses: [...]} (a response table) or mock: {command: [...], "
            "port: N} (your own mock server)",
            key=True,
        )
    else:
        if mock.command is None and not mock.responses:
            checker.problem(
                (*base, "mock"),
                "the mock has neither responses nor a command",
                "list responses (method, path, status, body) or give your mock's command and port",
                key=True,
            )
        elif mock.command is not None and mock.responses:
            checker.problem(
                (*base, "mock", "command"),
                "the mock has both a command and responses",
                "keep one: the response table (served by trustproof) or your own mock command",
                key=True,
            )
        if mock.command is not None and mock.port is None:
            checker.problem(
                (*base, "mock", "command"),
                "a mock command needs the port it listens on (mock.port)",
                "add port: N; the mock listens on 127.0.0.1:N",
                key=True,
            )
        if mock.command is None and mock.port is not None:
            checker.problem(
                (*base, "mock", "port"),
                "mock.port applies only with a mock command",
                "the response table is served on a port the sandbox chooses; remove port",
                key=True,
            )
        if mock.command is not None and mock.port is not None:
            owner = ports.get(int(mock.port))
            if owner is not None:
                checker.problem(
                    (*base, "mock", "port"),
                    f"port {mock.port} on 127.0.0.1 is already used by {owner}",
                    "give the mock its own port",
                )
            ports.setdefault(int(mock.port), f"dependencies.{name}.mock.port")
        seen: dict[tuple[str, str], int] = {}
        for i, row in enumerate(mock.responses):
            first = seen.setdefault((row.method, row.path), i)
            if first != i:
                checker.problem(
                    (*base, "mock", "responses", i),
                    f"{row.method} {row.path} is already answered by responses[{first}]: this "
                    "row never answers",
                    "the first matching row answers; remove or change one of them",
                )
    if dependency.credentials is None:
        checker.problem(
            base,
            f"the mock of {name!r} needs credentials",
            "add credentials: {header: X-Api-Key, env: SOME_VARIABLE}: the mock refuses calls "
            "without them, so only the egress proxy (which adds them) reaches it",
            key=True,
        )
    if dependency.ca is not None:
        checker.problem(
            (*base, "ca"),
            "ca applies only to mode: real (a mock is served over plain HTTP on loopback)",
            "remove ca, or set mode: real",
            key=True,
        )


def _real(checker: CrossChecker, name: str, dependency: Dependency) -> None:
    base: FieldPath = ("dependencies", name)
    if dependency.mock is not None:
        checker.problem(
            (*base, "mock"),
            "mock applies only to mode: mock",
            "remove mock, or set mode: mock to serve this dependency inside the sandbox",
            key=True,
        )
    if dependency.ca is not None:
        if dependency.scheme != "https":
            checker.problem(
                (*base, "ca"),
                "ca applies only to scheme: https",
                "remove ca, or use https",
                key=True,
            )
        try:
            checker.files[dependency.ca] = locate(
                checker.spec.base_dir, dependency.ca, checker.allowed
            )
        except FileRefusal as exc:
            checker.problem((*base, "ca"), f"CA file {exc.message}", exc.hint)


def _used_ports(checker: CrossChecker) -> dict[int, str]:
    """Ports on 127.0.0.1 the spec already gives to services and datastores."""
    used: dict[int, str] = {}
    for name, service in checker.spec.services.items():
        if service.host == "127.0.0.1":
            used.setdefault(int(service.port), f"services.{name}.port")
            if service.ingress.port is not None:
                used.setdefault(int(service.ingress.port), f"services.{name}.ingress.port")
    for name, store in checker.spec.datastores.items():
        if store.host == "127.0.0.1" and store.port is not None:
            used.setdefault(int(store.port), f"datastores.{name}.port")
    return used
