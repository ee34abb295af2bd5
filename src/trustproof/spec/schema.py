"""JSON Schema of the spec, generated from the same model the loader uses, for editors.

The schema checks shape (keys, types, patterns); cross-references (does that service exist?) are
only checked by `trustproof validate`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from trustproof.spec.model import Spec

SCHEMA_ID = "https://trustproof.dev/schema/trustproof-spec-v1.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `trustproof.yaml`."""
    definitions: dict[str, Any] = {}
    _schema(Spec, definitions)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "trustproof spec",
        **definitions[Spec.__name__],
        "$defs": {k: v for k, v in definitions.items() if k != Spec.__name__},
    }


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _schema(tp.__metadata__[0], defs)
    if origin in (Union, types.UnionType):
        options = [_schema(arg, defs) for arg in get_args(tp)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if tp is type(None):
        return {"type": "null"}
    if hasattr(tp, "json_schema"):
        schema: dict[str, Any] = tp.json_schema()
        return schema
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, defs)
    if origin in (Mapping, dict, typing.Mapping):
        key, value = get_args(tp)
        return {
            "type": "object",
            "propertyNames": _schema(key, defs),
            "additionalProperties": _schema(value, defs),
        }
    if origin is tuple:
        return {"type": "array", "items": _schema(get_args(tp)[0], defs)}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    simple = {str: "string", int: "integer", bool: "boolean", float: "number"}
    return {"type": simple[tp]}


def _dataclass(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in defs:
        defs[name] = {}  # placeholder against recursion
        hints = typing.get_type_hints(cls, include_extras=True)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            prop = _schema(hints[f.name], defs)
            if f.metadata.get("doc"):
                prop = {**prop, "description": f.metadata["doc"]}
            properties[f.name] = prop
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        body: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            body["required"] = required
        body.update(getattr(cls, "json_schema_extra", {}))  # e.g. "one of command and image"
        if cls.__doc__ and not cls.__doc__.startswith(f"{name}("):
            body["description"] = cls.__doc__.strip().splitlines()[0]
        defs[name] = body
    return {"$ref": f"#/$defs/{name}"}
