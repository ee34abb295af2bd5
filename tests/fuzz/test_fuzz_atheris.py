"""The atheris driver (`atheris_run.py`, used by `make fuzz`) runs each target from the saved
corpus cleanly, and a target that breaks leaves its input in the corpus as `crash-<sha1>`.

Subprocesses (libFuzzer takes over the process), so `integration`; bounded by run count."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from fuzzkit import CORPUS

pytest.importorskip("atheris", reason="atheris is a Linux x86-64 dev dependency")
pytestmark = pytest.mark.integration

DRIVER = Path(__file__).resolve().parent / "atheris_run.py"


def fuzz(args: list[str], *, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, str(DRIVER), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("target", ["http1", "paths"])
def test_each_target_runs_clean_from_its_corpus(target: str, tmp_path: Path) -> None:
    work, artifacts = tmp_path / "work", tmp_path / "artifacts"
    work.mkdir()
    artifacts.mkdir()
    flags = ["-runs=100", "-max_len=2048", "-timeout=30", f"-artifact_prefix={artifacts}/"]
    done = fuzz([target, *flags, str(work), str(CORPUS / target)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Done 100 runs" in done.stderr
    assert not list(artifacts.iterdir())


def test_a_breaking_input_is_saved_as_a_crash_file(tmp_path: Path) -> None:
    seeds, artifacts = tmp_path / "seeds", tmp_path / "artifacts"
    seeds.mkdir()
    artifacts.mkdir()
    (seeds / "clean").write_bytes(b"/orders")
    (seeds / "breaks").write_bytes(b"/%2F")
    code = (
        "import sys; sys.argv[0] = 'atheris_run'; "
        f"sys.path.insert(0, {str(DRIVER.parent)!r}); import atheris_run\n"
        "def broken(data):\n"
        "    assert not data.startswith(b'/%2F'), 'an encoded slash accepted'\n"
        "atheris_run.main(sys.argv, {'broken': broken})\n"
    )
    done = fuzz(["broken", "-runs=100", f"-artifact_prefix={artifacts}/", str(seeds)], code=code)
    assert done.returncode != 0
    assert "an encoded slash accepted" in done.stdout + done.stderr
    name = "crash-" + hashlib.sha1(b"/%2F", usedforsecurity=False).hexdigest()
    assert [p.name for p in artifacts.iterdir()] == [name]
