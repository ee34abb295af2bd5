"""Bounds on what a spec may cost to read: a small hostile file never takes minutes or gigabytes.

Every bound is far above what a real spec needs (the bundled shop is 3 KB, 200 nodes, nesting 6
deep) and each one, when crossed, is a `SpecError` saying which bound and where, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    spec_bytes: int = 4 * 1024 * 1024
    """Size of the spec file itself."""
    depth: int = 64
    """Nesting of mappings and lists, as written and as reached through aliases."""
    nodes: int = 1_000_000
    """Nodes of the document with every alias (and merge key) expanded."""
    scalar_chars: int = 65_536
    """Length of one scalar (a string, a number, a key)."""
    int_digits: int = 30
    """Digits of an integer (ports have five; Python refuses to convert 4,300)."""
    file_bytes: int = 16 * 1024 * 1024
    """Size of a file the spec refers to (policies, Cedar schema, SQL, templates)."""
    route_checks: int = 2_000_000
    """Steps spent looking for overlapping route templates, per service."""


LIMITS = Limits()


def size(n: int) -> str:
    """A byte count for people: 4 MiB, 16 KiB, 512 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"
