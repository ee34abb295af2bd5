"""trustproof: prove, in CI, that your services trust exactly who they should.

``from trustproof import Sandbox`` gives the sandbox (`trustproof.sandbox.controller.Sandbox`);
it is imported on first use, so that importing a small part of the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Sandbox", "__version__"]

if TYPE_CHECKING:
    from trustproof.sandbox.controller import Sandbox


def __getattr__(name: str) -> Any:
    if name == "Sandbox":
        from trustproof.sandbox.controller import Sandbox  # noqa: PLC0415 (lazy, see above)

        return Sandbox
    raise AttributeError(f"module 'trustproof' has no attribute {name!r}")
