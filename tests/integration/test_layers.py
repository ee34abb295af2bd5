"""The import contracts (pyproject.toml, run by `make lint`) hold on the source tree — the layer
order, and the fake view's one-way modules — and each breaks on an import against it:
`lint-imports` runs on a copy of the package with one bad import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.integration


def lint_copy(tmp_path: Path, bad_import: tuple[str, str] | None = None) -> tuple[int, str]:
    """Run lint-imports with our contract on a copy of src/trustproof; `bad_import` appends
    ``import <module>`` to the file `relative path`."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "trustproof", src / "trustproof")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if bad_import is not None:
        target, module = bad_import
        with (src / "trustproof" / target).open("a", encoding="utf-8") as handle:
            handle.write(f"\nimport {module}  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(src)}  # the copy, ahead of the editable install
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_source_tree_keeps_the_layer_order(tmp_path: Path) -> None:
    code, output = lint_copy(tmp_path)
    assert code == 0, output
    assert "2 kept, 0 broken" in output


@pytest.mark.parametrize(
    ("target", "module", "edge"),
    [
        ("scrub.py", "trustproof.suite.runner", "trustproof.scrub -> trustproof.suite.runner"),
        ("probes/http.py", "trustproof.report", "trustproof.probes.http -> trustproof.report"),
        ("gateway/paths.py", "trustproof.probes.model", "gateway.paths -> trustproof.probes"),
    ],
)
def test_an_import_against_the_order_breaks_the_contract(
    tmp_path: Path, target: str, module: str, edge: str
) -> None:
    code, output = lint_copy(tmp_path, (target, module))
    assert code != 0
    assert "1 kept, 1 broken" in output  # the layer order; the fake view's contract still holds
    assert edge in output


def test_an_import_back_into_the_fake_view_breaks_its_one_way_contract(tmp_path: Path) -> None:
    """The import circle view/fake <-> fake_chaos <-> fake_http stays broken."""
    code, output = lint_copy(tmp_path, ("view/fake_state.py", "trustproof.view.fake"))
    assert code != 0
    assert "1 kept, 1 broken" in output
    assert "trustproof.view.fake_state -> trustproof.view.fake" in output
