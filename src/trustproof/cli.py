"""The `trustproof` command. Thin by design: it parses arguments, calls the library, and renders.

Exit codes: 0 success · 1 trust violations found · 2 bad spec or usage · 3 the environment could not
start · 70 internal error (a bug: please report it). Nothing reaches the terminal without passing
through the scrubber, and no traceback is ever shown for a user error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from trustproof import __version__
from trustproof.catalogue import CATALOGUE, selected
from trustproof.errors import SpecError, TrustproofError
from trustproof.plan import expected_matrix
from trustproof.policy.offline import policy_test, render_text
from trustproof.scrub import configure_logging, scrub
from trustproof.spec import Spec, json_schema, load_spec

EXIT_INTERNAL = 70
DEFAULT_SPEC = "trustproof.yaml"
F = TypeVar("F", bound=Callable[..., Any])

# Not a terminal (CI logs, pipes): wide enough that URLs and paths are never cut.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def friendly(func: F) -> F:
    """Turn trustproof errors into scrubbed messages and exit codes; never show a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            err.print(scrub(exc.render()), markup=False)
            count = len(exc.problems)
            err.print(
                f"{count} problem{'s' if count != 1 else ''} found; nothing was started.",
                style="bold red",
            )
            sys.exit(exc.exit_code)
        except TrustproofError as exc:
            err.print(scrub(str(exc)), markup=False, style="red")
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say so plainly, without secrets, and exit distinctly
            err.print(
                f"internal error: {type(exc).__name__}: {scrub(str(exc))}",
                markup=False,
                style="bold red",
            )
            err.print("this is a bug in trustproof; please report it with the command you ran")
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


spec_argument = click.argument(
    "spec_file",
    metavar="FILE",
    default=DEFAULT_SPEC,
    type=click.Path(dir_okay=False, path_type=Path),
)


class _Commands(click.Group):
    """The sandbox and suite commands (`cli_sandbox`) are imported when first named or listed:
    `validate` and the other offline commands start without aiohttp, psycopg and the sandbox
    (importing those took most of the 2 s that `validate` of the shop used to take)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            _sandbox_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        _sandbox_commands()
        return super().list_commands(ctx)


def _sandbox_commands() -> None:
    # Importing the module registers its commands on `cli`.
    from trustproof import cli_sandbox  # noqa: F401, PLC0415


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustproof")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Prove, in CI, that your services trust exactly who they should."""
    configure_logging(30 - 10 * min(verbose, 2))


@cli.command()
@spec_argument
@friendly
def validate(spec_file: Path) -> None:
    """Check a spec; print every problem as FILE:LINE:COL: field: message."""
    spec = load_spec(spec_file)
    allows = sum(
        len(routes) for callers in spec.access.services.values() for routes in callers.values()
    )
    out.print(
        f"[green]✓[/] {spec_file}: valid — {_count(spec.services, 'service')}, "
        f"{_count(spec.personas, 'persona')}, {_count(spec.datastores, 'datastore')}, "
        f"{allows} expected route grants, trust domain {spec.trust_domain}"
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and checks)."""
    click.echo(json.dumps(json_schema(), indent=2))


@cli.command()
@friendly
def init() -> None:
    """Write a commented starter trustproof.yaml (and its policy file) here."""
    starter = resources.files("trustproof.spec").joinpath("starter")
    targets = {
        Path(DEFAULT_SPEC): starter.joinpath("trustproof.yaml"),
        Path("policies/app.cedar"): starter.joinpath("app.cedar"),
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise click.UsageError(f"refusing to overwrite {', '.join(existing)} (move it away first)")
    for path, source in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(source.read_text(encoding="utf-8"))
        out.print(f"wrote {path}")
    out.print("next: edit trustproof.yaml, then run `trustproof validate`")


@cli.command()
def probes() -> None:
    """List the probe catalogue: the ids a spec can select."""
    table = Table("id", "what it checks", box=None)
    for info in CATALOGUE:
        table.add_row(info.id, info.title)
    out.print(table)


@cli.command()
@spec_argument
@friendly
def plan(spec_file: Path) -> None:
    """Show the expected access matrix and the probes that will check it."""
    spec = load_spec(spec_file)
    _print_plan(spec)


@cli.group()
def policy() -> None:
    """Check Cedar policies against the expected access matrix, offline."""


@policy.command("test")
@spec_argument
@friendly
def policy_test_command(spec_file: Path) -> None:
    """Evaluate every (caller, route) of the matrix against the policies; exit 1 on any
    over- or under-permission."""
    report, code = policy_test(spec_file)
    out.print(render_text(report), markup=False)
    sys.exit(code)


def _print_plan(spec: Spec) -> None:
    total_allow = total_deny = 0
    for boundary in expected_matrix(spec):
        table = Table(
            title=f"{boundary.kind} {boundary.name} — enforced by {boundary.enforcement}",
            title_justify="left",
        )
        table.add_column("operation")
        for caller in boundary.callers:
            table.add_column(caller, justify="center")
        for op in boundary.operations:
            marks = [
                "[green]allow[/]" if boundary.allowed(caller, op) else "[dim]deny[/]"
                for caller in boundary.callers
            ]
            table.add_row(op, *marks)
        out.print(table)
        allows = sum(cell.allowed for cell in boundary.cells)
        total_allow += allows
        total_deny += len(boundary.cells) - allows
    chosen = selected(spec.probes.select, spec.probes.deselect)
    out.print(
        f"{total_allow} (caller, operation) pairs must be allowed and {total_deny} refused; "
        f"{len(chosen)} of {len(CATALOGUE)} probes selected."
    )


def _count(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def main() -> None:
    cli(prog_name="trustproof")
