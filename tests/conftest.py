from __future__ import annotations

from pathlib import Path

import pytest

# pytester runs pytest inside the tests of the pytest plugin (tests/*/test_pytest_plugin*.py).
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"


@pytest.fixture
def shop_spec_path() -> Path:
    return SHOP
