"""The installed entry points, run as real processes the way a user or CI runs them."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def run(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def test_console_script_validates_the_shop(shop_spec_path: Path) -> None:
    result = run(str(BIN / "trustproof"), "validate", str(shop_spec_path))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_python_dash_m_reports_a_bad_spec(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: t.test\nservices:\n  a:\n    command: x\n    prot: 80\n")
    result = run(sys.executable, "-m", "trustproof", "validate", str(spec))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{spec}:5:5: services.a.prot: unknown key 'prot'" in lines
    assert "    hint: did you mean 'port'?" in lines
    assert "Traceback" not in result.stderr


def test_init_then_run_is_green_in_a_fresh_directory(tmp_path: Path) -> None:
    """The first hour: `init` then `run`, nothing edited, exits 0 — every case and scenario."""
    assert run(str(BIN / "trustproof"), "init", cwd=tmp_path).returncode == 0
    result = run(str(BIN / "trustproof"), "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    proved = run(str(BIN / "trustproof"), "run", cwd=tmp_path, timeout=600)
    assert proved.returncode == 0, proved.stdout + proved.stderr
    assert "every boundary behaved as the spec says" in proved.stdout
    assert (tmp_path / "trustproof-reports" / "report.html").is_file()


def test_init_example_shop_then_run_is_green(tmp_path: Path) -> None:
    """`init --example shop` in an empty directory gives the full shop, green as copied."""
    copied = run(str(BIN / "trustproof"), "init", "--example", "shop", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    proved = run(str(BIN / "trustproof"), "run", "--no-scenarios", cwd=tmp_path, timeout=600)
    assert proved.returncode == 0, proved.stdout + proved.stderr
    assert "every boundary behaved as the spec says" in proved.stdout


def test_init_starter_without_the_middleware_is_red(tmp_path: Path) -> None:
    """The failing twin: a starter service that ignores the contract (no proof check, no
    marker) is caught — the direct port is served, and nothing is marked as served."""
    assert run(str(BIN / "trustproof"), "init", cwd=tmp_path).returncode == 0
    app = tmp_path / "app.py"
    text = app.read_text()
    assert text.count("TrustproofMiddleware(app)") == 1
    app.write_text(
        text.replace("TrustproofMiddleware(app)", "app").replace(
            "caller = caller_of(environ)", "caller = type('C', (), {'principal': 'x', 'roles': ()})"
        )
    )
    proved = run(str(BIN / "trustproof"), "run", "--no-scenarios", cwd=tmp_path, timeout=600)
    assert proved.returncode == 1, proved.stdout + proved.stderr
    assert "NOT-SERVED" in proved.stdout
    lines = proved.stdout.splitlines()
    assert any(
        line.split()[:2] == ["OVER-PERMISSION", "bypass.direct-port"]
        for line in lines
        if line.strip()
    )


def test_free_port_skips_ports_in_use() -> None:
    from trustproof.cli.offline import STARTER_PORTS, free_port  # noqa: PLC0415

    first = free_port(random.Random(7))  # noqa: S311 (a port, not a secret)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first))
        assert free_port(random.Random(7)) != first  # noqa: S311
    assert first in STARTER_PORTS


def test_the_wheel_carries_the_middleware_and_the_starter(tmp_path: Path) -> None:
    """What `make dist` builds (offline, with hatchling) is what a team installs."""
    root = Path(__file__).resolve().parents[2]
    built = run(str(BIN / "hatchling"), "build", "-t", "wheel", "-d", str(tmp_path), cwd=root)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("trustproof-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {
        "trustproof/middleware/asgi.py",
        "trustproof/middleware/wsgi.py",
        "trustproof/spec/starter/app.py",
        "trustproof/_examples/shop/trustproof.yaml",
        "trustproof/_examples/shop/services/orders.py",
        "trustproof/spec/starter/trustproof.yaml",
        "trustproof/policy/trustproof.cedarschema",
        "trustproof/py.typed",
        "trustproof_pytest/__init__.py",
    } <= names


def test_a_reader_closing_the_pipe_ends_trustproof_quietly_with_141(shop_spec_path: Path) -> None:
    """`trustproof plan | head -1`: the reader is gone; trustproof ends as a shell reports a
    process killed by SIGPIPE (141) and says nothing — never 1 ("trust is broken") or 70."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before the first line: every write fails with EPIPE
    try:
        done = subprocess.run(
            [str(BIN / "trustproof"), "plan", str(shop_spec_path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""
