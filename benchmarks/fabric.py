"""Trust-fabric throughput: certificate and token issuance, token validation, revocation push.

Each figure is printed next to a reference measured in the same run on the same machine, so a
noisy machine still gives a fair ratio:

* leaf issuance           vs. a bare ECDSA P-256 key generation + one signature (the floor)
* token issuance          vs. a bare `jwt.encode` with ES256
* validation, cold        vs. a bare `jwt.decode` with ES256 (signature only, no policy)
* validation, cached      (signature skipped; time, revocation and binding still checked)
* revocation push         time from `revoke()` to a gateway (which had cached the token as
                          valid) refusing it

Run: `.venv/bin/python benchmarks/fabric.py [--json FILE]`. Loops are bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from _measure import micros, per_second
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from trustproof.clock import ManualClock
from trustproof.identity import CertificateAuthority
from trustproof.tokens import KeyRing, RevocationList, TokenIssuer, TokenValidator

ISSUER = "https://127.0.0.1:8443"
AUDIENCE = "spiffe://bench.test/payments"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    clock = ManualClock(datetime.now(UTC))
    ca = CertificateAuthority("bench.test", clock)
    keys = KeyRing(clock)
    revocations = RevocationList(clock)
    issuer = TokenIssuer(ISSUER, keys, clock)
    validator = TokenValidator(ISSUER, keys, revocations, clock)
    leaf = ca.issue("orders", timedelta(minutes=5))
    ttl = timedelta(minutes=5)

    results: dict[str, dict[str, float]] = {}

    def bare_sign(_: int) -> object:
        key = ec.generate_private_key(ec.SECP256R1())
        return key.sign(b"x" * 200, ec.ECDSA(hashes.SHA256()))

    rate, n = per_second(lambda i: ca.issue(f"w{i}", ttl))
    ref, _ = per_second(bare_sign)
    results["leaf issuance"] = {"per_second": rate, "reference_per_second": ref, "n": n}

    private = keys.active.private_key.reveal()
    claims = {"iss": ISSUER, "sub": "spiffe://bench.test/orders", "aud": AUDIENCE}
    rate, n = per_second(
        lambda _: issuer.issue(
            "spiffe://bench.test/orders", AUDIENCE, roles=("r",), cnf_x5t_s256=leaf.x5t_s256
        )
    )
    ref, _ = per_second(lambda _: jwt.encode(claims, private, algorithm="ES256"))
    results["token issuance"] = {"per_second": rate, "reference_per_second": ref, "n": n}

    tokens = [
        issuer.issue(
            "spiffe://bench.test/orders", AUDIENCE, cnf_x5t_s256=leaf.x5t_s256
        ).token.reveal()
        for _ in range(2000)
    ]

    def cold(i: int) -> object:
        validator.clear_cache()
        return validator.validate(
            tokens[i % len(tokens)], audience=AUDIENCE, peer_x5t_s256=leaf.x5t_s256
        )

    def cached(i: int) -> object:
        return validator.validate(tokens[0], audience=AUDIENCE, peer_x5t_s256=leaf.x5t_s256)

    public = private.public_key()
    bare = micros(
        lambda i: jwt.decode(
            tokens[i % len(tokens)], public, algorithms=["ES256"], audience=AUDIENCE
        )
    )
    check = validator.validate(tokens[0], audience=AUDIENCE, peer_x5t_s256=leaf.x5t_s256)
    assert check.ok, check
    results["validation cold"] = {"median_us": micros(cold), "reference_median_us": bare}
    results["validation cached"] = {"median_us": micros(cached), "reference_median_us": bare}

    mirror = RevocationList(clock)
    mirror.follow(revocations)
    gateway = TokenValidator(ISSUER, keys, mirror, clock)
    pushes: list[float] = []
    for token in tokens[:500]:
        found = gateway.inspect(token)
        assert gateway.validate(token, audience=AUDIENCE, peer_x5t_s256=leaf.x5t_s256).ok
        start = time.perf_counter_ns()
        revocations.revoke(str(found.claims["jti"]), clock.now() + ttl)
        refused = gateway.validate(token, audience=AUDIENCE, peer_x5t_s256=leaf.x5t_s256)
        pushes.append((time.perf_counter_ns() - start) / 1000)
        assert refused.reason == "revoked", refused
    results["revocation push to a gateway"] = {
        "median_us": statistics.median(pushes),
        "max_us": max(pushes),
    }

    print(f"{'figure':32} {'trustproof':>14} {'reference':>14} {'ratio':>7}")
    for name, figures in results.items():
        if "per_second" in figures:
            ours, ref = figures["per_second"], figures["reference_per_second"]
            print(f"{name:32} {ours:>10,.0f}/s {ref:>12,.0f}/s {ours / ref:>7.2f}")
        elif "reference_median_us" in figures:
            ours, ref = figures["median_us"], figures["reference_median_us"]
            print(f"{name:32} {ours:>11.1f} µs {ref:>11.1f} µs {ours / ref:>7.2f}")
        else:
            print(
                f"{name:32} {figures['median_us']:>11.1f} µs "
                f"{'(max ' + format(figures['max_us'], '.0f') + ' µs)':>14}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
