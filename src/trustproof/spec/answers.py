"""Value types of the ``expect`` and ``refuses`` keys of a service: how to tell, from an answer of a
server trustproof did not write, that its handler ran (``expect``) or how it refuses
(``refuses``). Each parses itself and describes itself as JSON Schema (see `values.py`); what they
mean to the verdicts is in `trustproof.probes.answers`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from trustproof.spec.values import BadValue, JsonSchema, shown

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")  # RFC 9110 §5.6.2 field name
MAX_STATUSES = 64
MAX_RULES = 32


def _status(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 100 <= raw <= 599:
        raise BadValue(
            f"{where}: expected an HTTP status code (100-599), got {shown(raw)}",
            "write a number like 200, or a list like [200, 201]",
        )
    return raw


class StatusCodes(tuple[int, ...]):
    """One HTTP status code or a list of them (``200`` or ``[200, 201]``)."""

    @classmethod
    def parse(cls, raw: object) -> StatusCodes:
        items = raw if isinstance(raw, list) else [raw]
        if not items or len(items) > MAX_STATUSES:
            raise BadValue(
                f"expected 1 to {MAX_STATUSES} HTTP status codes, got {len(items)}",
                "write a number like 403, or a list like [403, 404]",
            )
        codes = tuple(_status(item, "status") for item in items)
        return cls(dict.fromkeys(codes))

    @classmethod
    def json_schema(cls) -> JsonSchema:
        code = {"type": "integer", "minimum": 100, "maximum": 599}
        return {"anyOf": [code, {"type": "array", "items": code, "minItems": 1}]}


class HeaderRule(tuple[tuple[str, str | None], ...]):
    """A header a served answer carries: its name (``X-App``: present, any value) or
    ``{name: value}`` (present with exactly that value). Names match in any case."""

    @classmethod
    def parse(cls, raw: object) -> HeaderRule:
        if isinstance(raw, str):
            return cls(((_field_name(raw), None),))
        if isinstance(raw, dict) and 0 < len(raw) <= MAX_RULES:
            pairs: list[tuple[str, str | None]] = []
            for name, value in raw.items():
                if not isinstance(value, str):
                    raise BadValue(
                        f"header {shown(name)}: expected its value as a string, got {shown(value)}",
                        "quote the value",
                    )
                pairs.append((_field_name(name), value))
            return cls(pairs)
        raise BadValue(
            f"expected a header name or a mapping of header name to value, got {shown(raw)}",
            "write header: X-App, or header: {X-App: orders}",
        )

    @classmethod
    def json_schema(cls) -> JsonSchema:
        name = {"type": "string", "pattern": _TOKEN.pattern}
        mapping = {
            "type": "object",
            "propertyNames": name,
            "additionalProperties": {"type": "string"},
            "minProperties": 1,
        }
        return {"anyOf": [name, mapping]}


def _field_name(raw: object) -> str:
    if not isinstance(raw, str) or not _TOKEN.match(raw):
        raise BadValue(
            f"bad header name {shown(raw)}",
            "a header name is letters, digits and !#$%&'*+.^_`|~- (RFC 9110 §5.6.2)",
        )
    return raw


class JsonRule(tuple[tuple[str, str], ...]):
    """Values a served JSON answer holds: JSON Pointer (RFC 6901) -> the value there, kept as
    canonical JSON text (``{"/served_by": "orders"}``)."""

    @classmethod
    def parse(cls, raw: object) -> JsonRule:
        if not isinstance(raw, dict) or not 0 < len(raw) <= MAX_RULES:
            raise BadValue(
                f"expected a mapping of JSON Pointer to value (1 to {MAX_RULES}), got {shown(raw)}",
                'write json: {"/status": "ok"}',
            )
        pairs = []
        for pointer, value in raw.items():
            if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
                raise BadValue(
                    f"bad JSON Pointer {shown(pointer)}",
                    "a JSON Pointer is empty (the whole document) or starts with '/' (RFC 6901)",
                )
            if not _is_json(value, 0):
                raise BadValue(
                    f"the value at {shown(pointer)} is not plain JSON: {shown(value)}",
                    "use strings, numbers, true/false, null, lists and mappings (quote dates)",
                )
            pairs.append((pointer, json.dumps(value, sort_keys=True)))
        return cls(pairs)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {
            "type": "object",
            "propertyNames": {"pattern": "^(/.*)?$"},
            "minProperties": 1,
        }

    def expected(self) -> tuple[tuple[str, Any], ...]:
        """(pointer, value) pairs, the values decoded."""
        return tuple((pointer, json.loads(text)) for pointer, text in self)


def _is_json(value: object, depth: int) -> bool:
    if depth > 16:
        return False
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


REFUSAL_STAGES: tuple[str, ...] = ("tls", "authn", "authz")
"""The stages a `Refuses` declaration names, in the order a request meets them."""
