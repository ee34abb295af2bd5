"""`cedarpy`, imported without its `pst` module until something uses it.

cedarpy's `__init__` imports `cedarpy.pst` (typed policy-syntax-tree nodes: some forty frozen
dataclasses, about a tenth of a second of start-up) although only `policies_to_pst` needs it, and
trustproof never calls that. The standard library's `importlib.util.LazyLoader` registers the
module so that it is executed on first attribute access instead: every command that validates
policies starts that much faster, and nothing changes for code that does use `pst`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys


def _register_lazy_pst() -> None:
    if "cedarpy.pst" in sys.modules:
        return
    package = importlib.util.find_spec("cedarpy")  # a top-level find: imports nothing
    if package is None or not package.submodule_search_locations:
        return  # not installed: the `import cedarpy` below says so
    spec = importlib.machinery.PathFinder.find_spec(
        "cedarpy.pst", list(package.submodule_search_locations)
    )
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cedarpy.pst"] = module
    spec.loader.exec_module(module)


_register_lazy_pst()

import cedarpy  # noqa: E402 (after the lazy registration, on purpose)

__all__ = ["cedarpy"]
