"""The examples `trustproof init --example NAME` copies: packaged in the wheel under
`trustproof/_examples/` (see `pyproject.toml`'s force-include), read from the checkout's
`examples/` when trustproof runs from a source tree (an editable install).

Only what the example is made of is copied: run output (`trustproof-reports/`, `.trustproof/`) and
Python caches are left behind, also when the wheel was built in a checkout that has them.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path, PurePosixPath

EXAMPLES = ("shop",)
"""The examples `init --example` knows, each a complete spec with its services and policies."""

LEFT_BEHIND = frozenset({"__pycache__", "trustproof-reports", ".trustproof", ".pytest_cache"})


def example_root(name: str) -> Traversable:
    """Where the files of example `name` are: the wheel's copy, else the checkout's."""
    packaged = resources.files("trustproof").joinpath("_examples", name)
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "examples" / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"example {name!r} is not in this installation of trustproof")


def example_files(root: Traversable) -> list[tuple[PurePosixPath, Traversable]]:
    """Every file of an example as (path relative to the example, source), sorted."""
    found: list[tuple[PurePosixPath, Traversable]] = []

    def walk(node: Traversable, at: PurePosixPath) -> None:
        for child in node.iterdir():
            if child.name in LEFT_BEHIND or child.name.endswith((".pyc", ".pyo")):
                continue
            if child.is_dir():
                walk(child, at / child.name)
            elif child.is_file():
                found.append((at / child.name, child))

    walk(root, PurePosixPath())
    return sorted(found, key=lambda item: item[0])
