"""trustproof: prove, in CI, that your services trust exactly who they should."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
