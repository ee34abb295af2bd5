"""Path and request tricks, sent byte-exact (`HttpRequest.exact`), judged by the right oracle:
what the three ``authz`` probes (in `trustproof.probes.authz`) send, to which cells, and how.

* ``authz.path-traversal`` — on every allowed cell, the path written differently (``/./p``,
  ``//p``, ``/zz/../p``, ``p/``, ``/%2e/p``, an encoded ``/``, upper case). A variant may be
  refused (strictness is safe) or served by the service; neither fails, and the result's reason
  says which (information). Only an inconclusive answer or an error fails.
* ``authz.refused-path-tricks`` — on refused cells, the path of the refused route written so that
  a naive server's check might not recognise it while its handler still serves it (``//p``,
  ``/./p``, ``p/``, case variants, ``%2e``, a percent-encoded letter, ``%2f``, ``;param``,
  ``..;/``, a trailing dot, an empty query, a fragment): each must stay refused.
* ``authz.refused-request-tricks`` — on refused cells, the request line or headers bent: an
  absolute-form target, ``Host`` variants, ``HEAD`` for a refused ``GET``, and
  ``X-HTTP-Method-Override`` / ``X-Original-URL`` / ``X-Rewrite-URL`` naming an operation the
  caller *is* allowed (a server deciding on the header instead of the request line is fooled):
  each must stay refused.

Sizing: by default the refused probes take one representative refused cell per (route, caller
class — workload or persona) of each service; with ``--thorough`` (`Plan.thorough`) every refused
cell. The representative is a caller that is allowed something on the service where there is one
(the override variants need an allowed operation to name), then the first by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from trustproof.plan import Boundary, Cell
from trustproof.probes.base import Plan
from trustproof.probes.cells import boundary_kind, presentation
from trustproof.probes.http import exchange
from trustproof.probes.model import BoundaryKind, Case, Expectation, Result
from trustproof.probes.params import PathTrick, RequestTrick
from trustproof.probes.presentation import concrete
from trustproof.spec.model import Spec
from trustproof.view import HostVariant, HttpRequest, SandboxView

PathTransform = Callable[[str], str]


def encoded_slash(path: str) -> str:
    """The last ``/`` of `path` as ``%2F`` (a single segment gets a trailing ``%2F``)."""
    if path.count("/") > 1:
        cut = path.rindex("/")
        return path[:cut] + "%2F" + path[cut + 1 :]
    return path + "%2F"


def encoded_letter(path: str) -> str:
    """The first letter of `path` percent-encoded: ``/admin`` -> ``/%61dmin``."""
    for index, char in enumerate(path):
        if char.isascii() and char.isalpha():
            return f"{path[:index]}%{ord(char):02x}{path[index + 1 :]}"
    return path


def swapped_case(path: str) -> str:
    """The first letter of the last segment in the other case: ``/orders/1`` -> ``/Orders/1``
    when the last segment has no letter, the first letter anywhere."""
    last = path.rindex("/")
    for start in (last, 0):
        for index in range(start, len(path)):
            if path[index].isascii() and path[index].isalpha():
                return path[:index] + path[index].swapcase() + path[index + 1 :]
    return path


def semicolon_param(path: str) -> str:
    """A ``;param`` after the first segment: ``/admin/x`` -> ``/admin;x=1/x``."""
    cut = path.find("/", 1)
    return f"{path};x=1" if cut < 0 else f"{path[:cut]};x=1{path[cut:]}"


# (variant, transform of the concrete path) on allowed cells: either answer is fine.
PATH_TRICKS: tuple[tuple[str, PathTransform], ...] = (
    ("dot-segment", lambda p: "/." + p),
    ("double-slash", lambda p: "/" + p),
    ("dot-dot", lambda p: "/zz/.." + p),
    ("trailing-slash", lambda p: p + "/"),
    ("encoded-dot", lambda p: "/%2e" + p),
    ("encoded-slash", encoded_slash),
    ("upper-case", lambda p: p.upper()),
)

# (variant, transform) on refused cells: each must stay refused.
REFUSED_PATH_TRICKS: tuple[tuple[str, PathTransform], ...] = (
    ("double-slash", lambda p: "/" + p),
    ("dot-segment", lambda p: "/." + p),
    ("trailing-slash", lambda p: p + "/"),
    ("upper-case", lambda p: p.upper()),
    ("swapped-case", swapped_case),
    ("encoded-dot", lambda p: "/%2e" + p),
    ("encoded-letter", encoded_letter),
    ("encoded-slash", encoded_slash),
    ("semicolon-param", semicolon_param),
    ("dot-dot-semicolon", lambda p: "/zz/..;" + p),
    ("trailing-dot", lambda p: p + "."),
    ("empty-query", lambda p: p + "?"),
    ("fragment", lambda p: p + "#x"),
)

HOST_TRICKS: tuple[HostVariant, ...] = (
    "other-host",
    "other-port",
    "no-port",
    "upper-case",
    "trailing-dot",
)
OVERRIDE_URL_HEADERS = ("X-Original-URL", "X-Rewrite-URL")


def request_tricks(boundary: Boundary, cell: Cell) -> Iterator[tuple[str, RequestTrick]]:
    """The request tricks of one refused cell (the override headers only where the caller is
    allowed some operation to name)."""
    method, _, template = cell.operation.partition(" ")
    yield "absolute-form", RequestTrick(absolute_form=True)
    for host in HOST_TRICKS:
        yield f"host-{host}", RequestTrick(host=host)
    if method == "GET":
        yield "head-for-get", RequestTrick(method="HEAD")
    granted = [op for op in boundary.operations if boundary.allowed(cell.caller, op)]
    same_path = [op for op in granted if op.partition(" ")[2] == template]
    if same_path:
        other = same_path[0].partition(" ")[0]
        override = (("X-HTTP-Method-Override", other),)
        yield f"method-override-{other}", RequestTrick(headers=override)
    same_method = [op for op in granted if op.partition(" ")[0] == method]
    if same_method:
        url = concrete(same_method[0].partition(" ")[2])
        for header in OVERRIDE_URL_HEADERS:
            yield header.lower(), RequestTrick(headers=((header, url),))


def caller_class(spec: Spec, caller: str) -> str:
    return "workload" if caller in spec.services else "persona"


def refused_cells(plan: Plan) -> Iterator[tuple[Boundary, Cell, BoundaryKind]]:
    """(boundary, refused cell, boundary kind): every one with `plan.thorough`, else one per
    (route, caller class) of each service."""
    spec = plan.spec
    for boundary in plan.services():
        kind = boundary_kind(spec, boundary.name)
        refused = [cell for cell in boundary.cells if not cell.allowed]
        if not plan.thorough:
            refused = _representatives(spec, boundary, refused)
        for cell in refused:
            yield boundary, cell, kind


def _representatives(spec: Spec, boundary: Boundary, cells: list[Cell]) -> list[Cell]:
    def rank(cell: Cell) -> tuple[bool, str]:
        grants = any(boundary.allowed(cell.caller, op) for op in boundary.operations)
        return (not grants, cell.caller)

    chosen: dict[tuple[str, str], Cell] = {}
    for cell in cells:
        group = (cell.operation, caller_class(spec, cell.caller))
        if group not in chosen or rank(cell) < rank(chosen[group]):
            chosen[group] = cell
    keep = set(chosen.values())
    return [cell for cell in cells if cell in keep]


def trick_case(  # noqa: PLR0917 (one case of a path trick: every field is the cell's or the trick's)
    probe: str,
    boundary: Boundary,
    kind: BoundaryKind,
    cell: Cell,
    expect: Expectation,
    variant: str,
    path: str,
) -> Case:
    return Case(
        probe,
        boundary.name,
        kind,
        cell.caller,
        cell.operation,
        expect,
        variant=variant,
        params=PathTrick(path),
    )


def refused_any() -> Expectation:
    """Any refusal: a trick may be refused by the policy or already by the request parser."""
    return Expectation.refuse()


async def send_exact(
    case: Case,
    target: SandboxView,
    *,
    path: str = "",
    method: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    host: HostVariant = "as-is",
    absolute_form: bool = False,
) -> Result:
    how = presentation(case, target)
    base: HttpRequest = how.request()
    request = replace(
        base,
        method=method or base.method,
        path=path or base.path,
        headers=(*base.headers, *headers),
        exact=True,
        host=host,
        absolute_form=absolute_form,
    )
    if request.method == "HEAD":
        request = replace(request, body=None)
    words = how.describe()
    if host != "as-is":
        words += f", Host {host}"
    if absolute_form:
        words += ", absolute-form target"
    if headers:
        words += ", " + ", ".join(f"{name}: {value}" for name, value in headers)
    result = await exchange(target, request, words, from_gateway=case.kind == "gateway")
    return _unserved(case, result)


NOT_SERVED = {
    400: "the request was refused as malformed (HTTP 400)",
    421: "misdirected request (HTTP 421)",  # RFC 9110 §15.5.20: wrong Host for this server
    501: "method not implemented (HTTP 501)",  # RFC 9110 §15.6.2
}


def _unserved(case: Case, result: Result) -> Result:
    """A server trustproof did not write (``self``) that answers a trick with 400, 421 or 501
    and no service marker (which `classify` reads as allowed or as an error) did not serve it:
    its request parser, virtual-host routing or method table refused it. Behind a trustproof
    gateway an answer without the gateway's deny is a forwarded one, whatever its status: that
    reading is `classify`'s."""
    status = result.evidence.status
    if case.kind != "self" or result.outcome not in ("allowed", "error"):
        return result
    if result.evidence.served_by:
        return result
    if status in NOT_SERVED:
        return replace(result, outcome="denied_authz", stage="request", reason=NOT_SERVED[status])
    return result
