"""Helpers for the policy tests: a private copy of the shop example that a test may break."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trustproof.spec import load_spec
from trustproof.spec.model import Spec

ROOT = Path(__file__).resolve().parents[3]
SHOP_DIR = ROOT / "examples" / "shop"


class ShopCopy:
    """examples/shop copied into a temporary directory; edit its files, then load its spec."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.policy_file = directory / "policies" / "shop.cedar"
        self.schema_file = directory / "policies" / "shop.cedarschema"
        self.spec_file = directory / "trustproof.yaml"

    def edit(self, path: Path, change: Callable[[str], str]) -> None:
        before = path.read_text()
        after = change(before)
        assert after != before, "the edit changed nothing: the test would prove nothing"
        path.write_text(after)

    def edit_policies(self, change: Callable[[str], str]) -> None:
        self.edit(self.policy_file, change)

    def add_policy(self, text: str) -> int:
        """Append a policy; returns the line it starts on."""
        current = self.policy_file.read_text()
        self.policy_file.write_text(current + "\n" + text)
        return current.count("\n") + 2

    def line_of(self, fragment: str, path: Path | None = None) -> int:
        text = (path or self.policy_file).read_text()
        assert text.count(fragment) == 1, f"{fragment!r} is not unique"
        return text[: text.index(fragment)].count("\n") + 1

    def spec(self) -> Spec:
        return load_spec(self.spec_file, policies=False)
