"""`CedarPolicyEngine`: the policy decision point, on Cedar (cedarpy), with everything pre-parsed.

The policies, the schema and the entity store are parsed once, into cedarpy's reusable handles
(`PolicySet`, `Schema`, `Entities`); a decision then only builds the request. Re-parsing on every
call costs more than ten times as much (see `benchmarks/policy.py`).

A request is evaluated against its slice of the policies only (`trustproof.policy.slicing`): the
policies whose principal, action and resource scope can match it, unscoped ones always included.
The decision is the one the whole set gives (a policy whose scope does not match neither applies
nor errs), at a cost that no longer grows with the number of policies: with 512 policies, about
what the shop's 9 cost (`benchmarks/scale.py`). ``slicer=None`` evaluates the whole set.

Each request is checked against the schema as Cedar evaluates it, so a malformed request (an
unknown method, a source address that is not an IP address, a wrongly typed field) is refused
rather than evaluated. Identical requests are answered from a bounded cache: an engine is
immutable (policies, schema and entities never change under it), so its answer to a given request
never changes either. Only clean answers are cached, never one with errors, and only for
requests whose fields have their declared types (``True == 1``: a ``client_cert`` of 1 is no Bool
to Cedar, and must not be answered as ``True`` was).

Around the call to Cedar, a decision does as little as it can: the request's context is written
as JSON once per distinct context (a gateway sees a handful: its callers' addresses, roles, the
hour), cedarpy receives it as the string it would otherwise make of a dict, and the determining
policies are named in the bundle's order (Cedar gives them as a set, in no stable order).

Roles are the directory's (the spec, as changed by `with_roles`), not the request's: a role
removed with `with_roles` is gone from the next decision of the engine it returns, whatever the
caller's token still claims (the token's claims reach policies as ``context.token_roles``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from trustproof.errors import SpecError
from trustproof.policy.batching import Pending, service_groups, union
from trustproof.policy.cedar_import import cedarpy
from trustproof.policy.engine import AccessRequest, Decision, Reason
from trustproof.policy.entities import ENTITY_TYPES, Directory, route_id
from trustproof.policy.slicing import PolicySlicer, Uid
from trustproof.policy.sources import PolicyBundle, load_policies
from trustproof.scrub import scrub

if TYPE_CHECKING:  # the spec package's loader imports this package
    from trustproof.spec.model import Spec

DEFAULT_CACHE_SIZE = 4096
CONTEXTS = 256  # distinct request contexts whose JSON is kept (per engine)
_POLICY_IN_ERROR = re.compile(r"policy `([^`]*)`")


class CedarPolicyEngine:
    """Decides `AccessRequest`s with Cedar. Build it with `from_spec`."""

    def __init__(
        self,
        bundle: PolicyBundle,
        directory: Directory,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        slicer: type[PolicySlicer] | None = PolicySlicer,
    ) -> None:
        """Raises `SpecError` if the bundle has problems (no engine runs on broken policies).

        `slicer`: how a request's policies are chosen (`trustproof.policy.slicing`); None
        evaluates the whole set for every request (the reference the slices are checked against).
        """
        if bundle.problems or bundle.policy_set is None or bundle.schema is None:
            raise SpecError(bundle.problems)
        self.bundle = bundle
        self.directory = directory
        self.cache_size = cache_size
        self._policies: cedarpy.PolicySet = bundle.policy_set
        self._schema: cedarpy.Schema = bundle.schema
        self._entities = directory.handle(bundle.schema)
        self._labels = {source.policy_id: source.label for source in bundle.policies}
        self._order = {source.policy_id: n for n, source in enumerate(bundle.policies)}
        self._contexts: dict[tuple[bool, str, tuple[str, ...], int], str] = {}
        self._cache: dict[AccessRequest, Decision] = {}
        self.slicer_type = slicer
        self._slicer = slicer(bundle, directory) if slicer is not None else None

    @classmethod
    def from_spec(
        cls,
        spec: Spec,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        slicer: type[PolicySlicer] | None = PolicySlicer,
    ) -> CedarPolicyEngine:
        """Read the spec's policy files and schema; raises `SpecError` listing every problem."""
        return cls(
            load_policies(spec), Directory.from_spec(spec), cache_size=cache_size, slicer=slicer
        )

    def with_roles(self, name: str, roles: Iterable[str]) -> CedarPolicyEngine:
        """A new engine in which persona or workload `name` holds exactly `roles`.

        The policies and the schema are shared, not re-parsed; only the entity store is rebuilt
        (about 0.15 ms for the shop). The new engine starts with an empty cache. Raises
        KeyError when `name` is not a persona or workload of the spec.
        """
        return CedarPolicyEngine(
            self.bundle,
            self.directory.with_roles(name, roles),
            cache_size=self.cache_size,
            slicer=self.slicer_type,
        )

    def roles_of(self, name: str) -> tuple[str, ...]:
        return self.directory.principals[name].roles

    def decide(self, request: AccessRequest) -> Decision:
        # Only a request whose flag and hour have their own types is remembered or recalled:
        # True == 1 as a key, and a client_cert of 1 (not a Bool to Cedar) must not be answered
        # as True was.
        typed = type(request.client_cert) is bool and type(request.hour_utc) is int
        remembered = self._recall(request) if typed else None
        if remembered is not None:
            return remembered
        try:
            decision = self._evaluate(request, time.perf_counter_ns())
        except Exception as exc:  # fail closed: nothing that goes wrong here may allow
            return Decision.deny("engine-error", scrub(f"{type(exc).__name__}: {exc}"))
        if typed and not decision.errors:
            self._remember(request, decision)
        return decision

    def decide_all(self, requests: Sequence[AccessRequest]) -> list[Decision]:
        """Each request's decision, as `decide` gives it, for many requests at once (a whole
        matrix: `trustproof policy test`).

        Requests on one service are evaluated in groups (`trustproof.policy.batching`): one call
        to Cedar per group, against the union of its requests' slices, parsed once — where
        `decide` would parse a slice per principal, action and route. A union of slices holds
        every policy that can apply to each of its requests, so each decision is the whole
        set's. Each decision's `elapsed_us` is its share of its group's call. The decision cache
        is neither read nor filled; a request that does not fit the model, or a group whose call
        fails, is decided on its own.
        """
        if self._slicer is None:
            return [self.decide(request) for request in requests]
        decisions: list[Decision | None] = [None] * len(requests)
        services: dict[str, dict[Uid, list[Pending]]] = {}
        for n, request in enumerate(requests):
            entity_type = ENTITY_TYPES.get(request.principal_kind)
            valid_hour = type(request.hour_utc) is int and 0 <= request.hour_utc <= 23
            if entity_type is None or not valid_hour:
                decisions[n] = self.decide(request)
                continue
            principal = (entity_type, request.principal)
            resource = ("Route", route_id(request.service, request.route))
            try:
                chosen = self._slicer.applicable(principal, ("Action", request.action), resource)
                by_principal = services.setdefault(request.service, {})
                by_principal.setdefault(principal, []).append((n, chosen))
            except Exception:  # e.g. an unhashable field: decided (and refused) on its own
                decisions[n] = self.decide(request)
        for by_principal in services.values():
            for group in service_groups(by_principal):
                members = [requests[n] for n, _ in group]
                try:
                    decided = self._together(self._slicer.policy_set_of(union(group)), members)
                except Exception:  # fail closed, one at a time: `decide` answers every failure
                    decided = [self.decide(request) for request in members]
                for (n, _), decision in zip(group, decided, strict=True):
                    decisions[n] = decision
        return [d if d is not None else Decision.deny("engine-error") for d in decisions]

    def _together(
        self, policies: cedarpy.PolicySet, requests: Sequence[AccessRequest]
    ) -> list[Decision]:
        start = time.perf_counter_ns()
        queries = [
            {
                "principal": {"type": ENTITY_TYPES[r.principal_kind], "id": r.principal},
                "action": {"type": "Action", "id": r.action},
                "resource": {"type": "Route", "id": route_id(r.service, r.route)},
                "context": self._context(r),
            }
            for r in requests
        ]
        results = cedarpy.is_authorized_batch(queries, policies, self._entities, self._schema)
        if len(results) != len(requests):
            raise RuntimeError(f"Cedar answered {len(results)} of {len(requests)} requests")
        share = (time.perf_counter_ns() - start) / 1000 / len(requests)
        return [self._decision(result, share) for result in results]

    def _recall(self, request: AccessRequest) -> Decision | None:
        try:
            return self._cache.get(request)
        except Exception:  # e.g. an unhashable field: not an answer, just not cached
            return None

    def _remember(self, request: AccessRequest, decision: Decision) -> None:
        """Cache a clean decision; a cache that cannot take it changes nothing."""
        if self.cache_size <= 0:
            return
        try:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)), None)  # the oldest entry
            self._cache[request] = Decision(
                decision.allowed,
                decision.reason,
                decision.policy_ids,
                (),
                decision.elapsed_us,
                cached=True,
            )
        except Exception:  # noqa: S110 - the answer stands without its cache entry
            pass

    def _evaluate(self, request: AccessRequest, start: int) -> Decision:
        entity_type = ENTITY_TYPES.get(request.principal_kind)
        if entity_type is None:
            return _deny_now(
                "engine-error", start, f"unknown principal kind {request.principal_kind!r}"
            )
        if type(request.hour_utc) is not int or not 0 <= request.hour_utc <= 23:
            return _deny_now("engine-error", start, f"hour_utc {request.hour_utc!r} is not 0-23")
        resource = route_id(request.service, request.route)
        policies = self._policies
        if self._slicer is not None:
            policies = self._slicer.policy_set(
                (entity_type, request.principal), ("Action", request.action), ("Route", resource)
            )
        query = {
            "principal": {"type": entity_type, "id": request.principal},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": "Route", "id": resource},
            "context": self._context(request),
        }
        result = cedarpy.is_authorized(query, policies, self._entities, self._schema)
        elapsed = (time.perf_counter_ns() - start) / 1000
        return self._decision(result, elapsed)

    def _context(self, request: AccessRequest) -> str:
        """The request's context as Cedar's JSON, written once per distinct context."""
        if type(request.client_cert) is not bool:  # 1 == True: never answered as the other
            return _context_json(request)
        key = (request.client_cert, request.source_ip, request.token_roles, request.hour_utc)
        try:
            found = self._contexts.get(key)
        except TypeError:  # an unhashable field (a list of roles): written, not kept
            return _context_json(request)
        if found is None:
            found = _context_json(request)
            if len(self._contexts) >= CONTEXTS:
                self._contexts.clear()  # a new set of callers: start over, never grow
            self._contexts[key] = found
        return found

    def _decision(self, result: Any, elapsed_us: float) -> Decision:
        diagnostics = result.diagnostics
        order = self._order
        ordered = sorted(diagnostics.reasons, key=lambda pid: order.get(pid, len(order)))
        ids = tuple(self._label(policy_id) for policy_id in ordered)
        errors = tuple(str(error) for error in diagnostics.errors)
        if errors:
            failing = tuple(
                dict.fromkeys(
                    self._label(found) for e in errors for found in _POLICY_IN_ERROR.findall(e)
                )
            )
            labelled = tuple(
                _POLICY_IN_ERROR.sub(lambda m: f"policy `{self._label(m[1])}`", e) for e in errors
            )
            # NoDecision: the request itself could not be built (it does not fit the schema).
            reason: Reason = (
                "engine-error" if result.decision is cedarpy.Decision.NoDecision else "policy-error"
            )
            return Decision(False, reason, failing or ids, labelled, elapsed_us)
        if result.allowed is True:
            return Decision(True, "allowed-by-policy", ids, (), elapsed_us)
        if result.decision is cedarpy.Decision.Deny:
            denied: Reason = "forbidden-by-policy" if ids else "no-matching-permit"
            return Decision(False, denied, ids, (), elapsed_us)
        return Decision(
            False,
            "engine-error",
            ids,
            (f"unexpected Cedar decision {result.decision!r}",),
            elapsed_us,
        )

    def _label(self, policy_id: str) -> str:
        return self._labels.get(policy_id, policy_id)


def _context_json(request: AccessRequest) -> str:
    return json.dumps(
        {
            "client_cert": request.client_cert,
            "source_ip": request.source_ip,
            "token_roles": list(request.token_roles),
            "hour_utc": request.hour_utc,
        }
    )


def _deny_now(reason: Reason, start: int, error: str) -> Decision:
    return Decision.deny(reason, error, elapsed_us=(time.perf_counter_ns() - start) / 1000)
