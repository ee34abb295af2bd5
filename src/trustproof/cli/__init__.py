"""The `trustproof` command. Thin by design: it parses arguments, calls the library, and renders.

Exit codes: 0 success · 1 trust violations found · 2 bad spec or usage · 3 the environment could not
start · 70 internal error (a bug: please report it) · 141 the output's reader closed the pipe.
Nothing reaches the terminal without passing through the scrubber, and no traceback is ever shown
for a user error.

One module per group of commands, each importing only `cli.base` (and `cli.control`'s table);
this module names them and imports each when its command is used (no module of the package
imports this one, so there is no import cycle):

* `cli.validate` — `validate`, the command run most often, on its own to start fast;
* `cli.offline` — the rest of what needs no sandbox: `plan`, `init`, `schema`, `probes`,
  `policy test`;
* `cli.control` — what talks to a running sandbox: `status`, `token`, `cert`;
* `cli.doctor` — `doctor`: what this machine lacks for a run;
* `cli.sandbox` — the sandbox and the suite: `up`, `down`, `run`, `probe`, `report`, `chaos`;
* `cli.importer` — `import compose`: a draft spec from a Docker Compose file;
* `cli.data` — `data scrub`: a test-data sample scrubbed by the spec's rules;
* `cli.audit` — `audit verify`, `audit show`, `audit logs`: a run's encrypted audit log and
  service logs.
* `cli.merge` — `report` (rendering with `cli.sandbox`'s command) and `report merge`, which
  joins the shards of a sharded run.
"""

from __future__ import annotations

import importlib

import click

from trustproof import __version__

__all__ = ["EXIT_INTERNAL", "cli", "main"]

EXIT_INTERNAL = 70  # a bug in trustproof: what `cli.base.friendly` exits with

WHERE: dict[str, str] = {
    "validate": "validate",
    "plan": "offline",
    "init": "offline",
    "schema": "offline",
    "probes": "offline",
    "policy": "offline",
    "doctor": "doctor",
    "up": "sandbox",
    "status": "control",
    "token": "control",
    "cert": "control",
    "run": "sandbox",
    "probe": "sandbox",
    "report": "merge",
    "down": "sandbox",
    "chaos": "sandbox",
    "import": "importer",
    "data": "data",
    "audit": "audit",
}
"""Each command's module under `trustproof.cli`, imported when the command is named (or help is
asked for): `--version` imports none of them, `token`/`cert`/`status` only the light `control`,
and only `up`/`run`/`probe`/`report`/`down` the sandbox, aiohttp and the suite."""


class _Commands(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = WHERE.get(cmd_name)
        if module is None:
            return None
        loaded = importlib.import_module(f"trustproof.cli.{module}")
        commands: tuple[click.Command, ...] = loaded.COMMANDS
        return next((c for c in commands if c.name == cmd_name), None)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(WHERE)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trustproof")
@click.option(
    "-v", "--verbose", count=True, help="List each case as it finishes; more log output (-vv)."
)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Prove, in CI, that your services trust exactly who they should."""
    ctx.ensure_object(dict)["verbose"] = verbose
    from trustproof.scrub import configure_logging  # noqa: PLC0415 (not for --version)

    configure_logging(30 - 10 * min(verbose, 2))


def main() -> None:
    cli(prog_name="trustproof")
