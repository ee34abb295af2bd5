"""What every command shares: the consoles, the spec argument, and `friendly`, which turns
trustproof errors into scrubbed messages and exit codes."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from trustproof.cli import EXIT_INTERNAL
from trustproof.errors import SpecError, TrustproofError
from trustproof.sandbox.rundir import DEFAULT_RUN_DIR
from trustproof.scrub import scrub

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_SPEC = "trustproof.yaml"
F = TypeVar("F", bound=Callable[..., Any])


class _LazyConsole:
    """A rich `Console`, made (and rich imported: a tenth of the start-up) on first use: the
    commands that print plain lines — `token`, `cert`, a successful `validate` — never pay it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console  # noqa: PLC0415 (lazy: see the class docstring)

            class _Console(Console):
                def on_broken_pipe(self) -> None:  # rich exits 1, which means "trust broken"
                    self.quiet = True
                    _quiet_stdout()
                    raise SystemExit(EXIT_BROKEN_PIPE)

            self._console = _Console(**self._options)
        return getattr(self._console, name)


# Not a terminal (CI logs, pipes): wide enough that URLs and paths are never cut.
out: Console = _LazyConsole(  # type: ignore[assignment]
    highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200
)
err: Console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # type: ignore[assignment]


def friendly(func: F) -> F:
    """Turn trustproof errors into scrubbed messages and exit codes; never show a traceback.
    (Plain `click` output: an error path does not import rich.)"""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            click.echo(scrub(exc.render()), err=True)
            count = len(exc.problems)
            click.secho(
                f"{count} problem{'s' if count != 1 else ''} found; nothing was started.",
                fg="red",
                bold=True,
                err=True,
            )
            sys.exit(exc.exit_code)
        except TrustproofError as exc:
            click.secho(scrub(str(exc)), fg="red", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `trustproof audit show | head`: the reader has had enough
            _quiet_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:  # a bug: say so plainly, without secrets, and exit distinctly
            click.secho(
                f"internal error: {type(exc).__name__}: {scrub(str(exc))}",
                fg="red",
                bold=True,
                err=True,
            )
            click.echo(
                "this is a bug in trustproof; please report it with the command you ran", err=True
            )
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a process ended by SIGPIPE (128 + 13): the output's reader closed it."""


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise again (the recipe of
    Python's documentation for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # no real file descriptor behind stdout (a test's capture): nothing to flush


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

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output on stdout (stable keys)."
)

run_dir_option = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUN_DIR,
    show_default=True,
    help="Where the running sandbox keeps its state.",
)
