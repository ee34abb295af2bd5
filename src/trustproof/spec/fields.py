"""What every spec model module builds its dataclass fields with: `doc` (a field carrying the
documentation `trustproof schema` shows) and `empty` (the default of an optional mapping)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[Any, Any] = MappingProxyType({})


def empty() -> Mapping[Any, Any]:
    return EMPTY


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field carrying its documentation (shown by `trustproof schema`)."""
    return field(metadata={"doc": text}, **kwargs)
