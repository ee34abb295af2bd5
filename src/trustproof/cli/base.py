"""What every command shares: the consoles, the spec argument, and `friendly`, which turns
trustproof errors into scrubbed messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console

from trustproof.cli import EXIT_INTERNAL
from trustproof.errors import SpecError, TrustproofError
from trustproof.sandbox.rundir import DEFAULT_RUN_DIR
from trustproof.scrub import scrub

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


def find_spec(start: Path) -> Path | None:
    """The nearest ``trustproof.yaml`` in `start` or a directory above it, like git finds its
    repository; None when there is none up to the root."""
    for directory in (start, *start.parents):
        candidate = directory / DEFAULT_SPEC
        if candidate.is_file():
            return candidate
    return None


def _spec_file(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """FILE as given, else ``$TRUSTPROOF_SPEC``, else the nearest ``trustproof.yaml`` from the
    current directory up (a missing one is reported by the loader, with its hint)."""
    if ctx.get_parameter_source(param.name or "") is not ParameterSource.DEFAULT:
        return value
    return find_spec(Path.cwd()) or value


spec_argument = click.argument(
    "spec_file",
    metavar="FILE",
    default=DEFAULT_SPEC,
    envvar="TRUSTPROOF_SPEC",
    callback=_spec_file,
    type=click.Path(dir_okay=False, path_type=Path),
)

run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR,
    show_default=True,
    help="Where the running sandbox keeps its state.",
)
