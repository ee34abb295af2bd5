"""Fixtures for the policy tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from policy_support import SHOP_DIR, ShopCopy


@pytest.fixture
def shop(tmp_path: Path) -> ShopCopy:
    target = tmp_path / "shop"
    shutil.copytree(SHOP_DIR, target)
    return ShopCopy(target)
