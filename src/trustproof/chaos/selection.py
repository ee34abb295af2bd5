"""Which services a chaos fault acts on: what it found, narrowed to the experiment's ``target``,
and the services reading the token service's keys themselves — the ones both JWKS faults
(``jwks-garbage``, ``jwks-wrong-keys``) break the key files of."""

from __future__ import annotations

from trustproof.chaos.experiment import Run
from trustproof.chaos.scenario import Target, own_validators, targets


def selected(run: Run, found: dict[str, Target]) -> dict[str, Target]:
    """`found`, or only the experiment's ``target`` among them when it names one."""
    target = run.experiment.target
    return {name: t for name, t in found.items() if target in (None, name)}


def key_file_readers(run: Run) -> dict[str, Target]:
    """The services validating tokens themselves (``gateway: none``, ``token: required``), each
    with an allowed call: they read the JWKS and PEM key files (the gateways hold the keys in
    memory)."""
    spec = run.env.spec
    return selected(run, targets(spec, own_validators(spec)))
