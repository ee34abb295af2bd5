"""Checks that need the whole spec: names that must exist, ports that must not collide, files
that must be there. They run after decoding, before anything starts, and point at the offending
value through the decoder's recorded positions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from trustproof.catalogue import PROBE_IDS, matching
from trustproof.errors import Problem
from trustproof.spec.auditing import alert_problems
from trustproof.spec.chaos import chaos_problems
from trustproof.spec.datacheck import data_problems
from trustproof.spec.dependency_checks import check_dependencies
from trustproof.spec.files import FileRefusal, allowed_dirs, locate, read_bounded
from trustproof.spec.images import image_problems
from trustproof.spec.limits import LIMITS
from trustproof.spec.model import Grants, Spec
from trustproof.spec.routes import TooManyRoutes, conflicts
from trustproof.spec.wording import Path as FieldPath
from trustproof.spec.wording import did_you_mean, render_path

_CREATE_TABLE = re.compile(
    r"\bcreate\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?"
    r"((?:\"?[a-z_][a-z0-9_]*\"?\.)?\"?[a-z_][a-z0-9_]*\"?)",
    re.IGNORECASE,
)
RESERVED_PREFIX = "trustproof"


class CrossChecker:
    def __init__(
        self,
        spec: Spec,
        file: str,
        marks: dict[FieldPath, tuple[int, int]],
        key_marks: dict[FieldPath, tuple[int, int]],
    ) -> None:
        self.spec = spec
        self.file = file
        self.marks = marks
        self.key_marks = key_marks
        self.allowed = allowed_dirs()
        self.files: dict[str, Path] = {}  # referenced files that passed `locate`
        self.problems: list[Problem] = []

    def run(self) -> list[Problem]:
        self._names()
        self._calls()
        self._routes()
        self._ports()
        self._files()
        self._access_services()
        self._access_datastores()
        self._datastore_roles()
        self._grants_match_access()
        self._probes()
        self._answers()
        self._chaos()
        for found in image_problems(self.spec):
            self.problem(found.path, found.message, found.hint, key=found.key)
        for path, message, hint in data_problems(self.spec):
            self.problem(path, message, hint)
        check_dependencies(self)
        for path, message, hint in alert_problems(self.spec.alerts):
            self.problem(path, message, hint)
        return self.problems

    # -- reporting ------------------------------------------------------------------------------

    def where(self, path: FieldPath, key: bool = False) -> tuple[int, int]:
        table = self.key_marks if key else self.marks
        while path:
            if path in table:
                return table[path]
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return (1, 1)

    def problem(self, path: FieldPath, message: str, hint: str = "", key: bool = False) -> None:
        line, col = self.where(path, key)
        self.problems.append(Problem(self.file, line, col, render_path(path), message, hint))

    # -- checks ---------------------------------------------------------------------------------

    def _chaos(self) -> None:
        gateways = {n: s.ingress.gateway != "none" for n, s in self.spec.services.items()}
        for path, message, hint in chaos_problems(self.spec.chaos, gateways):
            self.problem(path, message, hint)

    def _names(self) -> None:
        owners: dict[str, str] = {}
        for section in ("services", "personas", "datastores", "dependencies"):
            for name in getattr(self.spec, section):
                path = (section, name)
                if name.startswith(RESERVED_PREFIX):
                    self.problem(
                        path,
                        f"the name {name!r} is reserved for the sandbox's own identities",
                        "choose a name not starting with 'trustproof'",
                        key=True,
                    )
                if name in owners:
                    self.problem(
                        path,
                        f"{name!r} is already defined in {owners[name]}",
                        "services, personas, datastores and dependencies share one "
                        "namespace: each name is one SPIFFE ID or one egress proxy",
                        key=True,
                    )
                owners.setdefault(name, f"{section}.{name}")

    def _calls(self) -> None:
        for name, service in self.spec.services.items():
            for i, callee in enumerate(service.calls):
                path = ("services", name, "calls", i)
                if callee == name:
                    self.problem(
                        path,
                        f"service {name!r} lists itself in calls",
                        "a service calls itself in-process, not through its gateway",
                    )
                elif callee not in self.spec.services and callee not in self.spec.dependencies:
                    kind = " (that is a datastore)" if callee in self.spec.datastores else ""
                    hint = (
                        "datastore access is declared under datastores.<name>.roles"
                        if kind
                        else did_you_mean(callee, [*self.spec.services, *self.spec.dependencies])
                    )
                    self.problem(path, f"calls an undefined service {callee!r}{kind}", hint)

    def _routes(self) -> None:
        """Routes a request could match in two ways are refused: the gateway decides on one
        template, and the service's own router might run the other's handler."""
        for name, service in self.spec.services.items():
            routes = service.routes
            try:
                found = list(conflicts(routes, LIMITS.route_checks))
            except TooManyRoutes:
                self.problem(
                    ("services", name, "routes"),
                    f"checking these {len(routes):,} routes for overlaps takes more than "
                    f"{LIMITS.route_checks:,} steps",
                    "fewer routes, or fewer {placeholders} where others have literal segments",
                )
                continue
            for i, kind, j in found:
                path: FieldPath = ("services", name, "routes", i)
                route, earlier = routes[i], routes[j]
                if kind == "duplicate":
                    self.problem(
                        path,
                        f"route {str(route)!r} is declared twice (also routes[{j}])",
                        "remove one of them",
                    )
                else:
                    self.problem(
                        path,
                        f"route {str(route)!r} overlaps {str(earlier)!r} "
                        f"(routes[{j}]) and neither is more specific",
                        "make one template more specific, or merge them: the "
                        "gateway and the service's router could pick different "
                        "routes for the same request",
                    )

    def _ports(self) -> None:
        used: dict[tuple[str, int], FieldPath] = {}

        def claim(host: str, port: int | None, path: FieldPath) -> None:
            if port is None:
                return
            first = used.get((host, port))
            if first is not None:
                line, _ = self.where(first)
                self.problem(
                    path,
                    f"port {port} on {host} is already used by {render_path(first)} (line {line})",
                    "give each listener its own port, or its own 127.0.0.x address",
                )
            else:
                used[(host, port)] = path

        for name, service in self.spec.services.items():
            claim(service.host, service.port, ("services", name, "port"))
            if service.ingress.gateway == "none":
                if service.ingress.port not in (None, service.port):
                    self.problem(
                        ("services", name, "ingress", "port"),
                        f"with gateway: none callers reach the service on its own port "
                        f"{service.port}, not {service.ingress.port}",
                        "remove ingress.port, or put a gateway in front",
                    )
            else:
                claim(service.host, service.ingress.port, ("services", name, "ingress", "port"))
        for name, store in self.spec.datastores.items():
            claim(store.host, store.port, ("datastores", name, "port"))

    def _files(self) -> None:
        def need(relative: str | None, path: FieldPath, what: str, directory: bool = False) -> None:
            if relative is None:
                return
            try:
                self.files[relative] = locate(
                    self.spec.base_dir, relative, self.allowed, directory=directory
                )
            except FileRefusal as exc:
                self.problem(path, f"{what} {exc.message}", exc.hint)

        policies = self.spec.policies
        for i, file in enumerate(policies.files):
            need(file, ("policies", "files", i), "policy file")
        need(policies.schema, ("policies", "schema"), "Cedar schema")
        for name, service in self.spec.services.items():
            need(service.cwd, ("services", name, "cwd"), "working directory", directory=True)
            for i, template in enumerate(service.templates):
                need(template.src, ("services", name, "templates", i, "src"), "template")
        for name, store in self.spec.datastores.items():
            need(store.schema, ("datastores", name, "schema"), "schema SQL file")
            need(store.seed, ("datastores", name, "seed"), "seed SQL file")
            need(store.hba, ("datastores", name, "hba"), "pg_hba.conf template")
            need(store.conf, ("datastores", name, "conf"), "postgresql.conf template")
        for i, sample in enumerate(self.spec.data.samples if self.spec.data else ()):
            need(sample.file, ("data", "samples", i, "file"), "data sample")

    def _access_services(self) -> None:
        for target, callers in self.spec.access.services.items():
            base: FieldPath = ("access", "services", target)
            service = self.spec.services.get(target)
            if service is None:
                hint = (
                    "datastore access goes under access.datastores"
                    if target in self.spec.datastores
                    else did_you_mean(target, self.spec.services)
                )
                self.problem(base, f"undefined service {target!r}", hint, key=True)
                continue
            declared = {str(route) for route in service.routes}
            for caller, routes in callers.items():
                path = (*base, caller)
                if caller not in self.spec.services and caller not in self.spec.personas:
                    self.problem(
                        path,
                        f"unknown caller {caller!r} (expected a service or a persona)",
                        did_you_mean(caller, self.spec.callers),
                        key=True,
                    )
                    continue
                caller_service = self.spec.services.get(caller)
                if caller_service is not None and target not in caller_service.calls:
                    self.problem(
                        path,
                        f"{caller!r} is expected to reach {target!r}, but "
                        f"services.{caller}.calls does not list {target!r}",
                        f"add {target} to services.{caller}.calls (that creates the "
                        "egress proxy), or remove this entry",
                        key=True,
                    )
                for i, route in enumerate(routes):
                    if route != "*" and route not in declared:
                        hint = (
                            did_you_mean(route, declared)
                            if declared
                            else (f"declare it under services.{target}.routes")
                        )
                        self.problem(
                            (*path, i),
                            f"route {route!r} is not declared by service {target!r}",
                            hint,
                        )

    def _access_datastores(self) -> None:
        for target, callers in self.spec.access.datastores.items():
            base: FieldPath = ("access", "datastores", target)
            store = self.spec.datastores.get(target)
            if store is None:
                hint = (
                    "service access goes under access.services"
                    if target in self.spec.services
                    else did_you_mean(target, self.spec.datastores)
                )
                self.problem(base, f"undefined datastore {target!r}", hint, key=True)
                continue
            tables = self._tables(store.schema)
            for caller, grants in callers.items():
                path = (*base, caller)
                if caller not in self.spec.services:
                    self.problem(
                        path,
                        f"unknown caller {caller!r} (expected a service: "
                        "datastores are reached by workloads with certificates)",
                        did_you_mean(caller, self.spec.services),
                        key=True,
                    )
                    continue
                if caller not in store.roles:
                    self.problem(
                        path,
                        f"{caller!r} is expected to reach {target!r}, but "
                        f"datastores.{target}.roles has no role for it",
                        f"add a role for {caller} under datastores.{target}.roles",
                        key=True,
                    )
                self._known_tables(grants, tables, path, target)

    def _datastore_roles(self) -> None:
        for target, store in self.spec.datastores.items():
            tables = self._tables(store.schema)
            for role, grants in store.roles.items():
                path: FieldPath = ("datastores", target, "roles", role)
                if role not in self.spec.services:
                    hint = did_you_mean(role, self.spec.services)
                    self.problem(
                        path,
                        f"grant for an undefined role {role!r} (roles are named "
                        "after the calling service)",
                        hint,
                        key=True,
                    )
                    continue
                self._known_tables(grants, tables, path, target)

    def _grants_match_access(self) -> None:
        """The roles PostgreSQL is given (`datastores.<d>.roles`) grant exactly what the oracle
        (`access.datastores`) expects: a grant the oracle does not name is an over-permission
        built into the sandbox, and an expected privilege no role grants fails for sure."""
        for target, store in self.spec.datastores.items():
            expected = self.spec.access.datastores.get(target, {})
            for role, grants in store.roles.items():
                if role not in self.spec.services:
                    continue  # reported by _datastore_roles
                oracle = _privileges(expected.get(role, {}))
                for table, privilege in sorted(_privileges(grants) - oracle):
                    self.problem(
                        ("datastores", target, "roles", role, _spelled(grants, table)),
                        f"role {role!r} is granted {privilege.upper()} on {table!r}, which "
                        f"access.datastores.{target}.{role} does not expect",
                        f"add {privilege} on {table} to access.datastores.{target}.{role}, or "
                        "remove the grant",
                    )
            for caller, grants in expected.items():
                if caller not in store.roles:
                    continue  # reported by _access_datastores
                granted = _privileges(store.roles[caller])
                for table, privilege in sorted(_privileges(grants) - granted):
                    self.problem(
                        ("access", "datastores", target, caller, _spelled(grants, table)),
                        f"{caller!r} is expected to have {privilege.upper()} on {table!r}, but "
                        f"datastores.{target}.roles.{caller} does not grant it",
                        f"grant {privilege} on {table} under datastores.{target}.roles.{caller}, "
                        "or remove it from the oracle",
                    )

    def _known_tables(
        self, grants: Grants, tables: set[str] | None, path: FieldPath, store: str
    ) -> None:
        if tables is None:
            return
        for table in grants:
            if table not in tables and table.split(".")[-1] not in tables:
                hint = did_you_mean(table, tables) if tables else "the schema creates no tables"
                self.problem(
                    (*path, table),
                    f"table {table!r} is not created by the schema of datastore {store!r}",
                    hint,
                    key=True,
                )

    def _tables(self, schema: str | None) -> set[str] | None:
        """Tables created by a schema file, or None when there is no readable schema to check."""
        if schema is None or schema not in self.files:
            return None  # refused by _files()
        try:
            sql = read_bounded(self.files[schema]).decode("utf-8")
        except (FileRefusal, UnicodeDecodeError):
            return None  # changed since _files() looked; the datastore reports it when it starts
        return {m.group(1).replace('"', "").lower() for m in _CREATE_TABLE.finditer(sql)}

    def _probes(self) -> None:
        for section in ("select", "deselect"):
            patterns: Iterable[str] = getattr(self.spec.probes, section)
            for i, pattern in enumerate(patterns):
                if not matching(pattern):
                    self.problem(
                        ("probes", section, i),
                        f"{pattern!r} matches no probe id",
                        did_you_mean(pattern, PROBE_IDS) or "see `trustproof probes`",
                    )

    def _answers(self) -> None:
        """``expect`` and ``refuses`` describe servers trustproof did not write; behind its
        gateway they would be ignored (the gateway's own answers say it all), so they are refused
        there. Per-route evidence names declared routes; a status refuses at one stage only."""
        for name, service in self.spec.services.items():
            base: FieldPath = ("services", name)
            for key in ("expect", "refuses"):
                if getattr(service, key) is not None and service.ingress.gateway != "none":
                    self.problem(
                        (*base, key),
                        f"{key} applies only to services with ingress.gateway: none",
                        "behind trustproof's gateway the marker X-Served-By and the gateway's "
                        f"own refusals are the evidence; remove {key} or set gateway: none",
                        key=True,
                    )
            declared = {str(route) for route in service.routes}
            for route in service.expect.routes if service.expect else ():
                if route not in declared:
                    hint = did_you_mean(route, declared) or f"declare it under {name}.routes"
                    self.problem(
                        (*base, "expect", "routes", route),
                        f"route {route!r} is not declared by service {name!r}",
                        hint,
                        key=True,
                    )
            stages: dict[int, str] = {}
            for stage in ("tls", "authn", "authz"):
                for code in getattr(service.refuses, stage, None) or ():
                    if code < 300:
                        self.problem(
                            (*base, "refuses", stage),
                            f"{code} is not a refusal (a 1xx or 2xx answer)",
                            "list the statuses the service refuses with, e.g. 401 or 403",
                        )
                    elif code in stages:
                        self.problem(
                            (*base, "refuses", stage),
                            f"{code} is already declared under refuses.{stages[code]}",
                            "a status can name one refusing stage only",
                        )
                    stages.setdefault(code, stage)


def _table_key(table: str) -> str:
    """``public.orders`` and ``orders`` name one table (the schema file's search path)."""
    name = table.replace('"', "").lower()
    return name.removeprefix("public.")


def _privileges(grants: Grants) -> set[tuple[str, str]]:
    return {(_table_key(t), p.lower()) for t, privileges in grants.items() for p in privileges}


def _spelled(grants: Grants, table: str) -> str:
    """The key `table` (normalised) is written as in `grants`, for the problem's position."""
    return next((t for t in grants if _table_key(t) == table), table)
