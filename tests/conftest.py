from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"


@pytest.fixture
def shop_spec_path() -> Path:
    return SHOP
