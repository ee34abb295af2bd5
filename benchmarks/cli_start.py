"""How long the `trustproof` command takes to start, as a user or a script runs it.

Each command runs as a fresh process, RUNS times (bounded: each at most CHILD_TIMEOUT), and the
median wall time is printed next to references measured the same way in the same run:

* reference `python -c pass`           the interpreter alone
* reference `python -c "import click"`  the interpreter and the command-line library
* `trustproof --version`                imports no command module
* `trustproof validate <shop spec>`      the spec, its Cedar policies, the offline checks
* `trustproof plan <shop spec>`          the same, the expected matrix drawn as tables (rich), the
                                          backend `run` would use (no target here: ≤ 1 s at 16x
                                          in `benchmarks/scale.py`)
* `trustproof policy test <shop spec>`   the same, every cell of the matrix decided by Cedar
* `trustproof token ... --run-dir <empty>`  the light control client (fails at once, exit 3:
                                          no sandbox runs there; the start-up is what is measured)
* `trustproof cert ... --run-dir <empty>`   the same for `cert`

Python's bytecode caches are in place, as after `pip install` (which compiles them) or any first
run: the children run without PYTHONDONTWRITEBYTECODE and one warm-up run of each command comes
first. (With that variable set — as in some CI images — every start also compiles every module:
the figure printed last shows what that costs.)

Target (DESIGN.md §6): `--version`, `validate`, `token`, `cert` ≤ 0.3 s on this 2-core machine.
Run: `.venv/bin/python benchmarks/cli_start.py`. Nothing is sent anywhere.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 11
CHILD_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[1]
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"
TARGET_S = 0.3


CACHED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
UNCACHED = {**CACHED, "PYTHONDONTWRITEBYTECODE": "1"}


def median_seconds(argv: list[str], expect: int, env: dict[str, str] | None = None) -> float:
    env = CACHED if env is None else env
    subprocess.run(argv, capture_output=True, timeout=CHILD_TIMEOUT, check=False, env=env)
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        done = subprocess.run(
            argv, capture_output=True, timeout=CHILD_TIMEOUT, check=False, env=env
        )
        samples.append(time.perf_counter() - start)
        if done.returncode != expect:
            raise SystemExit(f"{argv}: exit {done.returncode}, expected {expect}: {done.stderr!r}")
    return statistics.median(samples)


def main() -> None:
    python = sys.executable
    command = [python, "-m", "trustproof"]
    with tempfile.TemporaryDirectory() as empty:
        rows = [
            ("reference: python -c pass", [python, "-c", "pass"], 0, False),
            ("reference: python -c 'import click'", [python, "-c", "import click"], 0, False),
            ("trustproof --version", [*command, "--version"], 0, True),
            ("trustproof validate (shop)", [*command, "validate", str(SHOP)], 0, True),
            ("trustproof plan (shop)", [*command, "plan", str(SHOP)], 0, False),
            ("trustproof policy test (shop)", [*command, "policy", "test", str(SHOP)], 0, False),
            (
                "trustproof token (no sandbox)",
                [*command, "token", "a", "--aud", "b", "--run-dir", empty],
                3,
                True,
            ),
            (
                "trustproof cert (no sandbox)",
                [*command, "cert", "a", "--out", f"{empty}/c", "--run-dir", empty],
                3,
                True,
            ),
        ]
        print(f"median of {RUNS} fresh processes each (target ≤ {TARGET_S} s for trustproof)")
        for label, argv, expect, judged in rows:
            seconds = median_seconds(argv, expect)
            verdict = ("  met" if seconds <= TARGET_S else "  MISSED") if judged else ""
            print(f"{label:42} {seconds:6.3f} s{verdict}")
        validate = [*command, "validate", str(SHOP)]
        uncached = median_seconds(validate, 0, UNCACHED)
        print(
            f"{'validate, no bytecode cache (compiles all)':42} {uncached:6.3f} s  (for reference)"
        )


if __name__ == "__main__":
    main()
