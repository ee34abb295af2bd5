"""The `trustproof` command. Thin by design: it parses arguments, calls the library, and renders.

Exit codes: 0 success · 1 trust violations found · 2 bad spec or usage · 3 the environment could not
start · 70 internal error (a bug: please report it). Nothing reaches the terminal without passing
through the scrubber, and no traceback is ever shown for a user error.

One module per group of commands, each importing only `cli.base`; this module builds the group
from them (no module of the package imports this one, so there is no import cycle):

* `cli.offline` — what needs no sandbox: `validate`, `plan`, `init`, `schema`, `probes`,
  `policy test`;
* `cli.sandbox` — the sandbox and the suite: `up`, `down`, `status`, `token`, `cert`, `run`,
  `probe`, `report`.
"""

from __future__ import annotations

import click

from trustproof import __version__
from trustproof.cli import offline, sandbox
from trustproof.cli.base import EXIT_INTERNAL
from trustproof.scrub import configure_logging

__all__ = ["EXIT_INTERNAL", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustproof")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Prove, in CI, that your services trust exactly who they should."""
    configure_logging(30 - 10 * min(verbose, 2))


for _module in (offline, sandbox):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="trustproof")
