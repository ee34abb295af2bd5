"""Policy decision throughput: the shop's policies, one decision at a time.

Each figure is printed next to the reference measured in the same run on the same machine:

* re-parse every call   (the reference) `cedarpy.is_authorized` given the policy text, the entity
                        JSON and the schema text: what an engine without pre-parsed handles pays
* handles, bare cedarpy `cedarpy.is_authorized` with `PolicySet` / `Entities` / `Schema` handles:
                        the floor for a schema-checked request through cedarpy's public API
* handles, no schema    the same without the per-request schema check (the source address as an
                        explicit ``ip()`` extension value): what that check costs
* handles, no context   the same without any context: the figure usually quoted for cedarpy
* engine, uncached      `CedarPolicyEngine.decide` with its cache off: the floor plus building the
                        request and mapping the answer to a `Decision`
* engine, cached        the same requests again, answered from the decision cache
* holder, cached        the same through `ReloadablePolicyEngine`, the hot-reload holder every
                        gateway of a sandbox decides through (its cost is one indirection)
* with_roles            rebuilding the entity store after a role change (policies not re-parsed)
* reload                a requested hot reload: read, parse, validate, build, swap (off the
                        request path in a sandbox; reference: from_spec)

The requests cycle through every cell of the shop's expected matrix (a mix of allows and denies),
each with the representative context of `trustproof policy test`.

Run: `.venv/bin/python benchmarks/policy.py [--json FILE]`. Loops are bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cedarpy
from _measure import micros, per_second

from trustproof.clock import SystemClock
from trustproof.plan import expected_matrix
from trustproof.policy import CedarPolicyEngine
from trustproof.policy.entities import ENTITY_TYPES, route_id
from trustproof.policy.offline import representative_request
from trustproof.policy.reload import PolicyReloader, ReloadablePolicyEngine
from trustproof.policy.sources import forget_policies, load_policies
from trustproof.spec import load_spec

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    spec = load_spec(SHOP)
    engine = CedarPolicyEngine.from_spec(spec)
    uncached = CedarPolicyEngine.from_spec(spec, cache_size=0)
    holder = ReloadablePolicyEngine(CedarPolicyEngine.from_spec(spec))
    requests = [
        representative_request(spec, cell.caller, boundary.name, cell.operation)
        for boundary in expected_matrix(spec)
        if boundary.kind == "service"
        for cell in boundary.cells
    ]
    queries: list[dict[str, Any]] = [
        {
            "principal": {"type": ENTITY_TYPES[r.principal_kind], "id": r.principal},
            "action": {"type": "Action", "id": r.action},
            "resource": {"type": "Route", "id": route_id(r.service, r.route)},
            "context": {
                "client_cert": r.client_cert,
                "source_ip": r.source_ip,
                "token_roles": list(r.token_roles),
                "hour_utc": r.hour_utc,
            },
        }
        for r in requests
    ]
    unchecked = [
        {
            **q,
            "context": {**q["context"], "source_ip": {"__extn": {"fn": "ip", "arg": "127.0.0.1"}}},
        }
        for q in queries
    ]
    bare = [{k: v for k, v in q.items() if k != "context"} for q in queries]
    policy_text = "\n".join(spec.resolve(f).read_text() for f in spec.policies.files)
    assert spec.policies.schema is not None
    schema_text = spec.resolve(spec.policies.schema).read_text()
    entities_json = json.dumps(engine.directory.entities())
    policies, schema = engine.bundle.policy_set, engine.bundle.schema
    assert schema is not None
    entities = engine.directory.handle(schema)
    n = len(requests)

    # Every variant must give the same answers before its speed means anything.
    for i in range(n):
        reparsed = cedarpy.is_authorized(queries[i], policy_text, entities_json, schema_text)
        handled = cedarpy.is_authorized(queries[i], policies, entities, schema)
        decided = uncached.decide(requests[i])
        plain = cedarpy.is_authorized(unchecked[i], policies, entities)
        assert reparsed.allowed == handled.allowed == decided.allowed == plain.allowed, requests[i]
    allowed = sum(uncached.decide(r).allowed for r in requests)

    variants: dict[str, Callable[[int], object]] = {
        "re-parse every call": lambda i: cedarpy.is_authorized(
            queries[i % n], policy_text, entities_json, schema_text
        ),
        "handles, bare cedarpy": lambda i: cedarpy.is_authorized(
            queries[i % n], policies, entities, schema
        ),
        "handles, no schema": lambda i: cedarpy.is_authorized(unchecked[i % n], policies, entities),
        "handles, no context": lambda i: cedarpy.is_authorized(bare[i % n], policies, entities),
        "engine, uncached": lambda i: uncached.decide(requests[i % n]),
        "engine, cached": lambda i: engine.decide(requests[i % n]),
        "holder, cached": lambda i: holder.decide(requests[i % n]),
    }
    results: dict[str, dict[str, float]] = {}
    for name, func in variants.items():
        rate, count = per_second(func)
        results[name] = {"us_per_decision": micros(func), "per_second": rate, "count": count}
    reference = results["re-parse every call"]["us_per_decision"]
    results["with_roles"] = {
        "us_per_call": micros(lambda i: engine.with_roles("alice", ("customer",)), 500)
    }
    startup = micros(lambda i: (forget_policies(), CedarPolicyEngine.from_spec(spec)), 50)
    results["from_spec"] = {"us_per_call": startup}
    reloader = PolicyReloader(
        holder,
        engine.directory,
        fingerprint=lambda: 0,
        load=lambda: (forget_policies(), load_policies(spec))[1],
        clock=SystemClock(),
    )
    reload_us = micros(lambda i: reloader.check("request"), 50)
    assert all(event.outcome == "accepted" for event in reloader.events)
    results["reload"] = {"us_per_call": reload_us}

    print(
        f"shop policies: {n} requests ({allowed} allowed), {len(engine.bundle.policies)} policies"
    )
    print(f"{'variant':<24}{'µs/decision':>14}{'decisions/s':>14}{'speed-up':>10}")
    for name in variants:
        row = results[name]
        speedup = reference / row["us_per_decision"]
        print(
            f"{name:<24}{row['us_per_decision']:>14.1f}{row['per_second']:>14,.0f}{speedup:>9.1f}x"
        )
    print(f"{'with_roles':<24}{results['with_roles']['us_per_call']:>14.1f}  (µs per call)")
    print(f"{'from_spec':<24}{startup:>14.1f}  (µs: read, parse, validate, build)")
    print(f"{'reload':<24}{reload_us:>14.1f}  (µs: the same, then the swap and its record)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
