"""The commands that need no sandbox: `plan`, `init`, `schema`, `probes` and `policy test`
(`validate`, which pre-commit hooks and editors run often, is on its own in `cli.validate`, to
start fast). Thin like the rest of the command line: they parse, call the library, and render.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
from collections.abc import Mapping
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import click

from trustproof.catalogue import CATALOGUE, backend_note, selected
from trustproof.cli.base import DEFAULT_SPEC, friendly, json_option, out, spec_argument
from trustproof.cli.examples import EXAMPLES, example_files, example_root
from trustproof.errors import TrustproofError
from trustproof.plan import Boundary, dependency_edges, expected_matrix
from trustproof.policy.offline import policy_test, render_text
from trustproof.spec import Spec, json_schema, load_spec


@click.command()
@friendly
def schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and checks)."""
    click.echo(json.dumps(json_schema(), indent=2))


@click.command()
@click.option(
    "--example",
    type=click.Choice(EXAMPLES),
    default=None,
    help="Copy a complete example here instead (`shop`: three services, PostgreSQL, policies).",
)
@friendly
def init(example: str | None) -> None:
    """Write a starter here: trustproof.yaml, its Cedar policy and a service that honours the
    contract — green on its first `trustproof run`. With --example, copy that example instead."""
    if example is not None:
        _copy_example(example)
        return
    starter = resources.files("trustproof.spec").joinpath("starter")
    targets = {
        Path(DEFAULT_SPEC): starter.joinpath("trustproof.yaml"),
        Path("policies/app.cedar"): starter.joinpath("app.cedar"),
        Path("app.py"): starter.joinpath("app.py"),
    }
    _refuse_overwrite(targets)
    port = str(free_port())
    for path, source in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(source.read_text(encoding="utf-8").replace(STARTER_PORT, port, 1))
        out.print(f"wrote {path}")
    out.print("next: `trustproof run` (green as written), then make app.py and the spec yours")


def _copy_example(name: str) -> None:
    """Copy every file of example `name` into the current directory — nothing overwritten."""
    try:
        root = example_root(name)
    except FileNotFoundError as exc:
        raise click.UsageError(f"{exc} (reinstall it from the wheel or a checkout)") from None
    targets = {Path(*relative.parts): source for relative, source in example_files(root)}
    _refuse_overwrite(targets)
    for path, source in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as handle:
            handle.write(source.read_bytes())
    out.print(f"wrote the {name} example: {len(targets)} files")
    out.print("next: `trustproof run` (green as written), then `trustproof plan` to read it")


def _refuse_overwrite(targets: Mapping[Path, object]) -> None:
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        shown = ", ".join(existing[:5]) + (
            f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        )
        raise click.UsageError(f"refusing to overwrite {shown} (move it away first)")


STARTER_PORT = "18080"
"""The port the packaged starter names (valid as shipped); `init` writes a free one instead."""
STARTER_PORTS = range(20000, 30000)
"""Where the starter's port is chosen: below Linux's ephemeral range (32768-60999), so that no
client connection is handed the port between `init` and `run`."""


def free_port(rng: random.Random | None = None, tries: int = 50) -> int:
    """A port of `STARTER_PORTS` nothing listens on right now (bound and released on 127.0.0.1)."""
    rng = rng or random.Random()  # noqa: S311 (a port, not a secret)
    for _ in range(tries):
        port = rng.choice(STARTER_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise click.UsageError(f"no free port found in {tries} tries: set one in trustproof.yaml")


@click.command()
@json_option
@friendly
def probes(as_json: bool) -> None:
    """List the probe catalogue: the ids a spec can select."""
    if as_json:
        rows = [{"id": i.id, "title": i.title, "family": i.family} for i in CATALOGUE]
        click.echo(json.dumps(rows))
        return
    from rich.table import Table  # noqa: PLC0415 (rich's tables: only where one is drawn)

    table = Table("id", "what it checks", box=None)
    for info in CATALOGUE:
        table.add_row(info.id, info.title)
    out.print(table)


@click.command()
@spec_argument
@json_option
@friendly
def plan(spec_file: Path, as_json: bool) -> None:
    """Show the expected access matrix and the probes that will check it."""
    spec = load_spec(spec_file)
    if as_json:
        click.echo(json.dumps(plan_json(spec)))
        return
    _print_plan(spec)
    _print_backend(spec)


def _print_backend(spec: Spec) -> None:
    """Which backend `run` would use here, and what that leaves unchecked."""
    from trustproof.sandbox.choice import ENV, resolve_choice  # noqa: PLC0415 (`plan` only)

    try:
        kind = resolve_choice(os.environ.get(ENV) or None, spec.backend, lambda _: None)
    except TrustproofError as exc:
        out.print(f"backend: {exc}", markup=False)
        return
    out.print(f"backend: {kind}", markup=False)
    note = backend_note(spec.probes.select, spec.probes.deselect, kind)
    if note is not None:
        out.print(note, markup=False)


def plan_json(spec: Spec) -> dict[str, Any]:
    """The expected matrix as data: every boundary, its operations and its cells."""
    matrix = expected_matrix(spec)
    boundaries = [
        {
            "name": b.name,
            "kind": b.kind,
            "enforcement": b.enforcement,
            "operations": list(b.operations),
            "cells": [
                {"caller": c.caller, "operation": c.operation, "allowed": c.allowed}
                for c in b.cells
            ],
        }
        for b in matrix
    ]
    cells = [cell for b in matrix for cell in b.cells]
    return {
        "boundaries": boundaries,
        "allowed": sum(1 for c in cells if c.allowed),
        "refused": sum(1 for c in cells if not c.allowed),
        "probes": list(selected(spec.probes.select, spec.probes.deselect)),
        "dependencies": [asdict(edge) for edge in dependency_edges(spec)],
    }


@click.group()
def policy() -> None:
    """Check Cedar policies against the expected access matrix, offline."""


@policy.command("test")
@spec_argument
@friendly
def policy_test_command(spec_file: Path) -> None:
    """Evaluate every (caller, route) of the matrix against the policies; exit 1 on any
    over- or under-permission."""
    report, code = policy_test(spec_file)
    click.echo(render_text(report))  # plain text: no rich to import
    sys.exit(code)


GRID_CALLERS = 8
"""Up to this many callers a boundary is drawn as a grid (operations x callers); beyond, as one
line per caller with what it may do — a grid of 25 columns truncates every name."""


def _print_plan(spec: Spec) -> None:
    total_allow = total_deny = 0
    for boundary in expected_matrix(spec):
        title = f"{boundary.kind} {boundary.name} — enforced by {boundary.enforcement}"
        if len(boundary.callers) <= GRID_CALLERS:
            _print_grid(boundary, title)
        else:
            _print_lines(boundary, title)
        allows = sum(cell.allowed for cell in boundary.cells)
        total_allow += allows
        total_deny += len(boundary.cells) - allows
    for edge in dependency_edges(spec):
        out.print(
            f"dependency {edge.dependency} ({edge.mode}, {edge.target}, {edge.served_by}) — "
            f"{edge.caller} reaches it only through its egress proxy, ${edge.variable}",
            highlight=False,
            markup=False,
        )
    chosen = selected(spec.probes.select, spec.probes.deselect)
    out.print(
        f"{total_allow} (caller, operation) pairs must be allowed and {total_deny} refused; "
        f"{len(chosen)} of {len(CATALOGUE)} probes selected."
    )


def _print_grid(boundary: Boundary, title: str) -> None:
    from rich.table import Table  # noqa: PLC0415 (rich's tables: only where one is drawn)

    table = Table(title=title, title_justify="left")
    table.add_column("operation", no_wrap=True)
    for caller in boundary.callers:
        table.add_column(caller, justify="center", no_wrap=True)
    for op in boundary.operations:
        marks = [
            "[green]allow[/]" if boundary.allowed(caller, op) else "[dim]deny[/]"
            for caller in boundary.callers
        ]
        table.add_row(op, *marks)
    out.print(table)


def _print_lines(boundary: Boundary, title: str) -> None:
    out.print(f"[bold]{title}[/] ({len(boundary.operations)} operations)", highlight=False)
    for caller in boundary.callers:
        allowed = [op for op in boundary.operations if boundary.allowed(caller, op)]
        if not allowed:
            out.print(f"  {caller}: [dim]deny all[/]", soft_wrap=True)
        elif len(allowed) == len(boundary.operations):
            out.print(f"  {caller}: [green]allow all[/]", soft_wrap=True)
        else:
            out.print(f"  {caller}: [green]allow[/] {', '.join(allowed)}", soft_wrap=True)


COMMANDS: tuple[click.Command, ...] = (schema, init, probes, plan, policy)
