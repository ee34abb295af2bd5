"""The spec's ``chaos:`` section: trust-chaos experiments as data (`trustproof.chaos.experiment`).

    chaos:
      enabled: true            # false: `trustproof run` skips them (as with --no-chaos)
      experiments:
        - name: idp-down
          fault: idp-outage      # what breaks (the result's id is chaos.<fault>)
          mode: stopped          # idp-outage: stopped | error | slow
          target: orders         # the service the fault and the checks aim at (default: chosen)
          expect: fail-closed    # or: recover (within `recover_within` after the rollback)
        - name: gateway-clock-ahead
          fault: clock-skew
          target: orders
          skew: +1h              # signed: -2m is behind

Without a ``chaos:`` section a small default set runs (`trustproof.chaos.experiments.DEFAULTS`).
Problems that need the whole spec (an unknown target, a parameter the fault does not take) are
found by `chaos_problems`, which the cross-checker calls.
"""

# `doc()` (`trustproof.spec.fields`) wraps dataclasses.field: ruff cannot see that.
# ruff: noqa: RUF009

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from trustproof.spec.fields import doc
from trustproof.spec.values import BadValue, Count, Duration, JsonSchema, Name, shown

Fault = Literal[
    "idp-outage",
    "key-compromise",
    "clock-skew",
    "revocation-storm",
    "policy-corruption",
    "cedar-error",
    "audit-sink-down",
    "network-fault",
    "jwks-garbage",
    "jwks-wrong-keys",
    "crl-fault",
    "ca-rotation",
    "intermediate-revoked",
    "cert-expiry",
]
FAULTS: tuple[Fault, ...] = get_args(Fault)
IdpMode = Literal["stopped", "error", "slow"]
NetMode = Literal["latency", "loss", "reset"]
CrlMode = Literal["stale", "missing"]
CaRotationMode = Literal["overlap", "no-overlap"]
Mode = Literal[
    "stopped",
    "error",
    "slow",
    "latency",
    "loss",
    "reset",
    "stale",
    "missing",
    "overlap",
    "no-overlap",
]
MODES: dict[str, tuple[str, ...]] = {
    "idp-outage": get_args(IdpMode),
    "network-fault": get_args(NetMode),
    "crl-fault": get_args(CrlMode),
    "ca-rotation": get_args(CaRotationMode),
}
Expect = Literal["fail-closed", "recover"]
Link = Literal["token-service", "service"]

_SKEW = re.compile(r"^([+-])?((\d+(\.\d+)?(ms|s|m|h|d))+)$")


@dataclass(frozen=True)
class Skew:
    """A signed length of time: ``+5m`` (ahead of the sandbox clock), ``-2h`` (behind)."""

    seconds: float

    PATTERN: ClassVar[str] = _SKEW.pattern

    @classmethod
    def parse(cls, raw: object) -> Skew:
        hint = "a signed duration: +5m (ahead), -2h (behind), 30s"
        if not isinstance(raw, str):
            raise BadValue(f"bad skew {shown(raw)} (expected a signed duration)", hint)
        text = raw.strip()
        match = _SKEW.match(text)
        if match is None:
            raise BadValue(f"bad skew {shown(text)} (expected a signed duration)", hint)
        magnitude = Duration.parse(match.group(2)).seconds
        return cls(-magnitude if match.group(1) == "-" else magnitude)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN, "examples": ["+5m", "-2h"]}

    def __str__(self) -> str:
        sign = "-" if self.seconds < 0 else "+"
        return f"{sign}{Duration(abs(self.seconds))}" if self.seconds else "0s"


@dataclass(frozen=True)
class Experiment:
    name: Name = doc("A name for the experiment, unique in the spec (shown in reports).")
    fault: Fault = doc("What is broken on purpose; the result's id is chaos.<fault>.")
    target: Name | None = doc(
        "The service the fault and the checks aim at (default: chosen from the access matrix).",
        default=None,
    )
    expect: Expect = doc(
        "fail-closed: nothing that should be refused is allowed while the fault holds; recover: "
        "that too, and the steady state is back within `recover_within` after the rollback.",
        default="recover",
    )
    recover_within: Duration = doc(
        "How soon after the rollback the steady state must hold again.", default=Duration(5)
    )
    duration: Duration | None = doc(
        "How long the fault holds at least (default: as long as its checks take).", default=None
    )
    mode: Mode | None = doc(
        "idp-outage: stopped (nothing listens), error (HTTP 500), slow (answers late); "
        "network-fault: latency, loss, reset (on the link chosen by `link`); "
        "crl-fault: stale (a CRL past its nextUpdate), missing (the CRL file removed), "
        "default both (missing first); "
        "ca-rotation: overlap (the default), no-overlap.",
        default=None,
    )
    delay: Duration | None = doc(
        "idp-outage with mode slow: how late the token service answers (default 2s).",
        default=None,
    )
    latency: Duration | None = doc(
        "network-fault with mode latency: how late each chunk passes, both ways (default 200ms).",
        default=None,
    )
    loss: Count | None = doc(
        "network-fault with mode loss: the percentage of connections blackholed (default 50).",
        default=None,
    )
    skew: Skew | None = doc(
        "clock-skew only: how far the target's clock is moved — its gateway's, or without a "
        "gateway its own process's (libfaketime); default: a set of skews both ways.",
        default=None,
    )
    revocations: Count | None = doc(
        "revocation-storm only: how many tokens are revoked in one burst (default 1000).",
        default=None,
    )
    sample: Count = doc(
        "Steady state: how many allowed and how many refused cells of the access matrix are "
        "checked before, during and after the fault.",
        default=Count(3),
    )
    link: Link | None = doc(
        "network-fault only: where the network is degraded — token-service (between the "
        "sandbox and its token service; the default) or service (between a caller's egress "
        "proxy and its callee's gateway, on every service-to-service call of the target).",
        default=None,
    )


@dataclass(frozen=True)
class Chaos:
    enabled: bool = doc(
        "Run the experiments as part of `trustproof run` (`--no-chaos` skips them too).",
        default=True,
    )
    experiments: tuple[Experiment, ...] | None = doc(
        "The experiments, in order (default: a small fast set, see `trustproof probes`).",
        default=None,
    )


# Which optional parameters each fault takes (all take target, expect, recover_within, duration,
# sample).
PARAMETERS: dict[Fault, frozenset[str]] = {
    "idp-outage": frozenset({"mode", "delay"}),
    "key-compromise": frozenset(),
    "clock-skew": frozenset({"skew"}),
    "revocation-storm": frozenset({"revocations"}),
    "policy-corruption": frozenset(),
    "cedar-error": frozenset(),
    "audit-sink-down": frozenset(),
    "network-fault": frozenset({"mode", "latency", "loss", "link"}),
    "jwks-garbage": frozenset(),
    "jwks-wrong-keys": frozenset(),
    "crl-fault": frozenset({"mode"}),
    "ca-rotation": frozenset({"mode"}),
    "intermediate-revoked": frozenset(),
    "cert-expiry": frozenset(),
}
_OPTIONAL = ("mode", "delay", "latency", "loss", "skew", "revocations", "link")
NEEDS_GATEWAY: frozenset[Fault] = frozenset(
    {"policy-corruption", "cedar-error", "audit-sink-down", "revocation-storm"}
)


Located = tuple[tuple[str | int, ...], str, str]  # (field path, message, hint)


def chaos_problems(chaos: Chaos, services: dict[str, bool]) -> Iterator[Located]:
    """What is wrong with the experiments given the spec's services (name -> has a gateway):
    duplicate names, unknown targets, parameters the fault does not take."""
    seen: set[str] = set()
    for index, experiment in enumerate(chaos.experiments or ()):
        base: tuple[str | int, ...] = ("chaos", "experiments", index)
        if experiment.name in seen:
            yield (
                (*base, "name"),
                f"experiment {experiment.name!r} is named twice",
                ("give each experiment its own name"),
            )
        seen.add(experiment.name)
        allowed = PARAMETERS[experiment.fault]
        for name in _OPTIONAL:
            if getattr(experiment, name) is not None and name not in allowed:
                takers = sorted(f for f, params in PARAMETERS.items() if name in params)
                yield (
                    (*base, name),
                    f"{experiment.fault} takes no {name}",
                    (f"{name} applies to {', '.join(takers)}; remove it"),
                )
        modes = MODES.get(experiment.fault, ())
        if experiment.mode is not None and modes and experiment.mode not in modes:
            yield (
                (*base, "mode"),
                f"{experiment.fault} has no mode {experiment.mode}",
                (f"one of: {', '.join(modes)}"),
            )
        for name, mode in (("delay", "slow"), ("latency", "latency"), ("loss", "loss")):
            if getattr(experiment, name) is not None and experiment.mode != mode:
                yield (*base, name), f"{name} applies to mode: {mode} only", f"set mode: {mode}"
        if experiment.loss is not None and experiment.loss > 100:
            yield (*base, "loss"), f"loss {experiment.loss} is not a percentage", "1 to 100"
        target = experiment.target
        if target is None:
            continue
        if target not in services:
            yield (
                (*base, "target"),
                f"target {target!r} is not a service of the spec",
                (f"one of: {', '.join(sorted(services)) or '(no services)'}"),
            )
        elif experiment.fault in NEEDS_GATEWAY and not services[target]:
            yield (
                (*base, "target"),
                (f"{experiment.fault} acts on a trustproof gateway, and {target} has none"),
                "choose a service with ingress.gateway: trustproof",
            )


def fault_of(name: str) -> Fault | None:
    """The fault named `name`, or None."""
    return next((fault for fault in FAULTS if fault == name), None)
