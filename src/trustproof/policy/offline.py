"""The offline half of ``trustproof policy test FILE``: the access matrix against the policies.

Every cell of the spec's expected matrix (`trustproof.plan.expected_matrix`) for a service behind a
trustproof gateway is put to the policy engine with a representative context, and the answer is
compared with what the matrix says. Nothing is started: this is the fast check a policy author
runs before the sandbox does it for real. Disagreements come in two kinds:

* **over-permission** — the policies allow what the matrix refuses (a hole);
* **under-permission** — the policies refuse what the matrix allows (an outage).

A cell the policies refuse only because a policy failed to evaluate agrees with the matrix by
accident; it is listed as an error. Datastores are not Cedar's business (PostgreSQL enforces their
grants), and a service with ``gateway: none`` enforces access itself: both are left out.

The representative context: ``source_ip`` 127.0.0.1, ``hour_utc`` 12, ``token_roles`` the
caller's roles, ``client_cert`` true for a workload and, for a persona, true when the service's
ingress requires a client certificate (false when it is optional: a browser has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import AccessRequest, Decision, PolicyEngine
from trustproof.policy.sources import shown

if TYPE_CHECKING:  # the spec package's loader imports this package
    from trustproof.spec.model import Spec

Verdict = Literal["agrees", "over-permission", "under-permission"]
SOURCE_IP = "127.0.0.1"
HOUR_UTC = 12


@dataclass(frozen=True)
class CellCheck:
    """One matrix cell: what the matrix expects, and what the engine decided."""

    caller: str
    service: str
    operation: str  # "GET /orders/{id}"
    expected: bool
    decision: Decision

    @property
    def verdict(self) -> Verdict:
        if self.decision.allowed == self.expected:
            return "agrees"
        return "over-permission" if self.decision.allowed else "under-permission"

    @property
    def errored(self) -> bool:
        return bool(self.decision.errors) or self.decision.reason.endswith("-error")


@dataclass(frozen=True)
class MatrixReport:
    spec_file: str
    policy_files: tuple[str, ...]
    schema: str
    policy_count: int
    cells: tuple[CellCheck, ...]
    skipped: tuple[str, ...]  # services whose access is not Cedar's (gateway: none)
    locations: Mapping[str, str]  # policy label -> "file:line"

    @property
    def over_permissions(self) -> tuple[CellCheck, ...]:
        return tuple(c for c in self.cells if c.verdict == "over-permission")

    @property
    def under_permissions(self) -> tuple[CellCheck, ...]:
        return tuple(c for c in self.cells if c.verdict == "under-permission")

    @property
    def errors(self) -> tuple[CellCheck, ...]:
        """Cells whose decision came with an evaluation error, whatever their verdict."""
        return tuple(c for c in self.cells if c.errored)

    @property
    def ok(self) -> bool:
        return not (self.over_permissions or self.under_permissions or self.errors)

    @property
    def exit_code(self) -> int:
        """0 when the policies agree with the matrix everywhere, 1 otherwise."""
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec_file,
            "policy_files": list(self.policy_files),
            "schema": self.schema,
            "ok": self.ok,
            "skipped": list(self.skipped),
            "cells": [
                {
                    "caller": c.caller,
                    "service": c.service,
                    "operation": c.operation,
                    "expected": "allow" if c.expected else "refuse",
                    "decided": "allow" if c.decision.allowed else "refuse",
                    "verdict": c.verdict,
                    "reason": c.decision.reason,
                    "policy_ids": list(c.decision.policy_ids),
                    "errors": list(c.decision.errors),
                }
                for c in self.cells
            ],
        }


def representative_request(spec: Spec, caller: str, service: str, operation: str) -> AccessRequest:
    """The request a well-behaved `caller` would make for `operation` on `service`."""
    method, _, route = operation.partition(" ")
    if caller in spec.services:
        kind: Literal["workload", "persona"] = "workload"
        roles = tuple(spec.services[caller].roles)
        client_cert = True
    else:
        kind = "persona"
        roles = tuple(spec.personas[caller].roles)
        client_cert = spec.services[service].ingress.client_cert == "required"
    return AccessRequest(
        principal_kind=kind,
        principal=caller,
        roles=roles,
        action=method,
        service=service,
        route=route,
        client_cert=client_cert,
        source_ip=SOURCE_IP,
        token_roles=roles,
        hour_utc=HOUR_UTC,
    )


def check_matrix(spec: Spec, engine: PolicyEngine | None = None) -> MatrixReport:
    """Every service cell of the expected matrix, decided by `engine` (default: the spec's
    Cedar policies; raises `SpecError` when they have problems)."""
    from trustproof.plan import expected_matrix  # noqa: PLC0415 - plan -> spec -> this package

    engine = engine if engine is not None else CedarPolicyEngine.from_spec(spec)
    asked: list[tuple[str, str, str, bool]] = []  # caller, service, operation, expected
    skipped: list[str] = []
    for boundary in expected_matrix(spec):
        if boundary.kind != "service":
            continue
        if spec.services[boundary.name].ingress.gateway == "none":
            skipped.append(boundary.name)
            continue
        asked += [(c.caller, boundary.name, c.operation, c.allowed) for c in boundary.cells]
    requests = [representative_request(spec, who, where, what) for who, where, what, _ in asked]
    if isinstance(engine, CedarPolicyEngine):  # the whole matrix at once: see `decide_all`
        decisions = engine.decide_all(requests)
    else:
        decisions = [engine.decide(request) for request in requests]
    cells = [
        CellCheck(who, where, what, expected, decision)
        for (who, where, what, expected), decision in zip(asked, decisions, strict=True)
    ]
    locations: dict[str, str] = {}
    policy_count = 0
    if isinstance(engine, CedarPolicyEngine):
        policy_count = len(engine.bundle.policies)
        locations = {source.label: source.policy_id for source in engine.bundle.policies}
    return MatrixReport(
        spec_file=shown(spec.path),
        policy_files=tuple(spec.policies.files),
        schema=spec.policies.schema or "built-in",
        policy_count=policy_count,
        cells=tuple(cells),
        skipped=tuple(skipped),
        locations=MappingProxyType(locations),
    )


def policy_test(spec_path: str | Path) -> tuple[MatrixReport, int]:
    """Load the spec, check its matrix against its policies: (report, exit code 0 or 1).

    Raises `SpecError` (exit code 2) when the spec or its policies have problems.
    """
    # Imported here: the spec loader imports this package (check_policies) at its top.
    from trustproof.spec.load import load_spec  # noqa: PLC0415

    report = check_matrix(load_spec(spec_path))
    return report, report.exit_code


def render_text(report: MatrixReport) -> str:
    """The report for a terminal: the summary, then every disagreement with the deciding policy."""
    must = sum(c.expected for c in report.cells)
    services = len({c.service for c in report.cells})
    files = ", ".join(report.policy_files) or "none"
    lines = [
        f"policy test: {report.spec_file}",
        f"  policies: {files} ({report.policy_count} policies); schema: {report.schema}",
        f"  {len(report.cells)} cells on {services} services: {must} must be allowed, "
        f"{len(report.cells) - must} must be refused",
        f"  context: source_ip {SOURCE_IP}, hour_utc {HOUR_UTC}, token_roles = the caller's "
        "roles, client_cert as the service's ingress requires (always for workloads)",
    ]
    lines += [
        f"  skipped {name}: gateway: none (the service enforces access itself)"
        for name in report.skipped
    ]
    sections = (
        ("over-permission: the policies allow what the matrix refuses", report.over_permissions),
        ("under-permission: the policies refuse what the matrix allows", report.under_permissions),
        ("errors: a policy failed to evaluate", report.errors),
    )
    for title, cells in sections:
        if cells:
            lines += ["", f"{title} ({len(cells)}):"]
            width = max(len(_cell_name(c)) for c in cells)
            lines += [f"  {_cell_name(c):<{width}}  {_explain(c, report)}" for c in cells]
    disagreements = len(report.over_permissions) + len(report.under_permissions)
    lines.append("")
    if report.ok:
        lines.append(
            f"result: the policies agree with the access matrix on all {len(report.cells)} cells"
        )
    else:
        errors = f", {len(report.errors)} with errors" if report.errors else ""
        lines.append(f"result: {disagreements} disagreements{errors}")
    return "\n".join(lines)


def _cell_name(cell: CellCheck) -> str:
    return f"{cell.caller} -> {cell.service} {cell.operation}"


def _explain(cell: CellCheck, report: MatrixReport) -> str:
    decision = cell.decision
    named = ", ".join(_policy(pid, report) for pid in decision.policy_ids)
    if decision.allowed:
        return f"allowed by {named}"
    text = f"refused: {decision.reason}" + (f" by {named}" if named else "")
    if decision.errors:
        text += f" ({'; '.join(decision.errors)})"
    return text


def _policy(label: str, report: MatrixReport) -> str:
    where = report.locations.get(label)
    return f'"{label}" ({where})' if where and where != label else label
