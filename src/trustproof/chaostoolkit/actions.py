"""Chaos Toolkit actions: trustproof's trust faults on a running sandbox.

Faults with a rollback stay in force until it runs: ``token_service_down`` /
``token_service_restore``, ``token_path_fault`` / ``token_path_restore``,
``skew_gateway_clock`` / ``restore_gateway_clock``, ``audit_sink_down`` /
``audit_sink_restore``. ``compromise_signing_key`` cannot be undone (a removed key stays removed);
``renew_egress_tokens`` makes the egress proxies fetch tokens of the new key. ``run_experiment``
runs one whole trustproof experiment (steady state, fault, rollback, recovery) and returns its
result as results.json holds it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

from trustproof.chaos import experiments
from trustproof.chaos.scenario import Recorder
from trustproof.chaostoolkit.session import session, stop
from trustproof.errors import UsageError
from trustproof.spec.chaos import (
    Chaos,
    Expect,
    Experiment,
    Link,
    Mode,
    Skew,
    chaos_problems,
    fault_of,
)
from trustproof.spec.values import BadValue, Count, Duration, Name
from trustproof.suite import chaos_audit
from trustproof.view.chaos import IdpFault, IdpMode, NetFault, NetMode

HELD_IDP = "idp"
HELD_NET = "net"
HELD_AUDIT = "audit-sink"
IDP_MODES: dict[str, IdpMode] = {m: m for m in get_args(IdpMode)}
NET_MODES: dict[str, NetMode] = {m: m for m in get_args(NetMode)}


def token_service_down(spec: str, mode: str = "stopped", delay: float = 2.0) -> str:
    """The token service stopped, answering 500 (``error``) or ``slow``, until the rollback."""
    chosen = IDP_MODES.get(mode)
    if chosen is None:
        raise UsageError(f"no token service mode {mode!r}", f"one of: {', '.join(IDP_MODES)}")
    running = session(spec)
    running.hold(HELD_IDP, running.view.token_service_fault(IdpFault(chosen, delay)))
    return f"token service {mode}"


def token_service_restore(spec: str) -> bool:
    return session(spec).release(HELD_IDP)


def token_path_fault(
    spec: str, mode: str = "reset", latency: float = 0.2, loss: float = 0.5
) -> str:
    """Latency, loss or resets on the way to the token service (a TCP fault proxy)."""
    chosen = NET_MODES.get(mode)
    if chosen is None:
        raise UsageError(f"no network fault mode {mode!r}", f"one of: {', '.join(NET_MODES)}")
    running = session(spec)
    fault = NetFault(chosen, latency_s=latency, loss=loss)
    running.hold(HELD_NET, running.view.token_path_fault(fault))
    return f"token path: {mode}"


def token_path_restore(spec: str) -> bool:
    return session(spec).release(HELD_NET)


def skew_gateway_clock(spec: str, service: str, seconds: float) -> str:
    """`service`'s gateway reads the time `seconds` away (negative: behind) until the rollback."""
    running = session(spec)
    running.hold(f"clock:{service}", running.view.skew_clock(service, timedelta(seconds=seconds)))
    return f"{service}'s gateway clock moved {seconds:+g} s"


def restore_gateway_clock(spec: str, service: str) -> bool:
    return session(spec).release(f"clock:{service}")


def audit_sink_down(spec: str) -> str:
    """Every gateway's audit sink refuses to record until the rollback."""
    running = session(spec)
    running.hold(HELD_AUDIT, running.view.audit_sink_fault())
    return "audit sinks refusing"


def audit_sink_restore(spec: str) -> bool:
    return session(spec).release(HELD_AUDIT)


def compromise_signing_key(spec: str) -> dict[str, str]:
    """Emergency rotation: the active signing key removed at once (the kids, never a key)."""
    old, new = session(spec).view.compromise_signing_key()
    return {"removed_kid": old, "new_kid": new}


def renew_egress_tokens(spec: str) -> int:
    """The egress proxies drop their tokens and fetch new ones; how many proxies."""
    return session(spec).view.drop_cached_tokens()


def run_experiment(spec: str, fault: str, name: str = "ctk", **parameters: Any) -> dict[str, Any]:
    """One trustproof experiment, whole; its result (verdict, summary, timeline, figures)."""
    running = session(spec)
    gateways = {n: s.ingress.gateway != "none" for n, s in running.sandbox.spec.services.items()}
    experiment = experiment_of(fault, name, parameters, gateways)
    sid = f"chaos.{fault}"
    rec = Recorder(sid, chaos_audit.steps_to(running.sandbox, sid))  # each step: the audit log
    result = running.run(experiments.run(running.env, rec, experiment))
    chaos_audit.record_result(running.sandbox, result)
    running.last = result
    return result.to_json()


def experiment_of(
    fault: str, name: str, parameters: dict[str, Any], services: dict[str, bool]
) -> Experiment:
    """The experiment `run_experiment` runs: each spec parameter read as the spec reads it, then
    checked as the spec's experiments are (a mode or parameter the fault does not take, an
    unknown target) against `services` (name -> has a gateway)."""
    known = fault_of(fault)
    if known is None:
        raise UsageError(f"no fault {fault!r}", f"one of: {', '.join(experiments.FAULTS)}")
    values: dict[str, Any] = {key: _value(key, raw) for key, raw in parameters.items()}
    experiment = Experiment(_name(name), known, **values)
    for path, message, hint in chaos_problems(Chaos(experiments=(experiment,)), services):
        raise UsageError(f"{message} ({path[-1]})", hint)
    return experiment


def _name(raw: str) -> Name:
    try:
        return Name.parse(raw)
    except BadValue as exc:
        raise UsageError(str(exc), exc.hint) from None


def stop_sandbox(spec: str) -> bool:
    """Stop the sandbox (its faults rolled back first); False when none ran."""
    return stop(spec)


DURATIONS = frozenset({"delay", "latency", "recover_within", "duration"})
COUNTS = frozenset({"revocations", "sample", "loss"})
CHOICES: dict[str, tuple[str, ...]] = {
    "mode": get_args(Mode),
    "expect": get_args(Expect),
    "link": get_args(Link),
}
"""The closed vocabularies (which mode a fault takes is checked as the spec checks it)."""
PARAMETERS = frozenset({*DURATIONS, *COUNTS, *CHOICES, "skew", "target"})
"""Every field of a spec experiment but ``name`` and ``fault`` (a unit test keeps them equal)."""


def _value(name: str, raw: object) -> object:
    """An experiment parameter from JSON, as the spec would read it (``"2s"`` or seconds)."""
    if name not in PARAMETERS:
        raise UsageError(
            f"no experiment parameter {name}", f"one of: {', '.join(sorted(PARAMETERS))}"
        )
    try:
        return _parsed(name, raw)
    except BadValue as exc:
        raise UsageError(f"{name}: {exc}", exc.hint) from None


def _parsed(name: str, raw: object) -> object:
    if name in DURATIONS:
        return Duration(float(raw)) if isinstance(raw, int | float) else Duration.parse(raw)
    if name == "skew":
        return Skew(float(raw)) if isinstance(raw, int | float) else Skew.parse(raw)
    if name in COUNTS:
        return Count.parse(raw)
    if name == "target":
        return Name.parse(raw)
    choices = CHOICES.get(name)
    if choices is not None and raw in choices:
        return raw
    raise UsageError(f"no {name} {raw!r}", f"one of: {', '.join(choices or ())}")
