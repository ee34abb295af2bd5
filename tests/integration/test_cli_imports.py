"""What the offline commands import: `validate`, `plan` and `policy test` start in a fraction of a
second only while they leave the sandbox's side alone (aiohttp, the probes, the namespaces, the
database and container clients). Checked in a fresh process through `sys.modules`, never by time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Run in a fresh interpreter: the command as `trustproof ...` runs it, then what it imported.
PROBE = """
import sys
before = set(sys.modules)
{preload}
from trustproof.cli import main
sys.argv = ["trustproof", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = {heavy!r}
print("EXIT", code, file=sys.stderr)
print("HEAVY", ",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""

SANDBOX_SIDE = (
    "aiohttp",
    "uvloop",
    "psycopg",
    "docker",
    "faker",
    "sslyze",
    "jinja2",
    "dns",
    "asyncio",
    "cryptography.x509",
    "jwt",
    "trustproof.probes.base",
    "trustproof.sandbox.isolated",
    "trustproof.sandbox.controller",
    "trustproof.view",
    "trustproof.gateway",
    "trustproof.tokens",
    "trustproof.identity",
)


def imported(args: list[str], heavy: tuple[str, ...], preload: str = "") -> tuple[int, list[str]]:
    """(exit code, the modules of `heavy` loaded) after `trustproof ARGS` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(preload=preload, heavy=heavy), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = dict(line.split(" ", 1) for line in done.stderr.splitlines() if " " in line)
    assert "HEAVY" in lines, done.stderr[-2000:]
    return int(lines["EXIT"]), [m for m in lines["HEAVY"].strip().split(",") if m]


OFFLINE = [["validate"], ["plan"], ["plan", "--json"], ["policy", "test"]]


@pytest.mark.parametrize("command", OFFLINE)
def test_offline_commands_leave_the_sandbox_side_unimported(
    command: list[str], shop_spec_path: Path
) -> None:
    code, loaded = imported([*command, str(shop_spec_path)], SANDBOX_SIDE)
    assert code == 0
    assert loaded == []


@pytest.mark.parametrize("command", [["validate"], ["plan", "--json"], ["policy", "test"]])
def test_plain_text_commands_do_not_import_rich(command: list[str], shop_spec_path: Path) -> None:
    code, loaded = imported([*command, str(shop_spec_path)], ("rich",))
    assert code == 0
    assert loaded == []


def test_the_check_sees_a_module_the_command_imported(shop_spec_path: Path) -> None:
    """The failing twin: a process that did import aiohttp and rich is reported as such."""
    code, loaded = imported(
        ["validate", str(shop_spec_path)], (*SANDBOX_SIDE, "rich"), "import aiohttp, rich.table"
    )
    assert code == 0
    assert "aiohttp" in loaded
    assert "asyncio" in loaded  # aiohttp's own
    assert "rich" in loaded
