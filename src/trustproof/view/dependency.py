"""A call to an external dependency (`spec.dependencies`) as a probe asks for it, and its answer:
through the calling service's egress proxy for it (which adds the credentials), or straight to
the dependency's mock without them (`SandboxView.dependency_call`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DependencyCall:
    service: str  # whose egress proxy (or, direct, on whose behalf)
    dependency: str
    method: str
    path: str
    through_proxy: bool  # False: straight to the mock, no credentials


@dataclass(frozen=True)
class DependencyAnswer:
    status: int | None  # None: nothing answered (`detail` says why)
    mock: str = ""  # the dependency whose mock answered (its X-Trustproof-Mock header)
    detail: str = ""  # the start of the body, or the transport failure (scrubbed)
    from_proxy: bool = False  # the egress proxy answered itself (it sent nothing on)
