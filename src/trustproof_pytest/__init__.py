"""The pytest11 entry point of trustproof: the plugin itself is `trustproof.pytest_plugin`.

This shim is a top-level package of its own because pytest assertion-rewrites the whole top-level
package of an entry-point plugin (for an editable install, the package holding the entry point):
pointing the entry point at `trustproof.pytest_plugin` directly would make every pytest run in a
development checkout rewrite all of `trustproof` on import.
"""

from __future__ import annotations

from trustproof.pytest_plugin import (
    pytest_addoption,
    pytest_collect_file,
    pytest_configure,
    pytest_sessionfinish,
    trustproof_cert,
    trustproof_client,
    trustproof_sandbox,
    trustproof_token,
)

__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_sessionfinish",
    "trustproof_cert",
    "trustproof_client",
    "trustproof_sandbox",
    "trustproof_token",
]
