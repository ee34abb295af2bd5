"""Chaos Toolkit probes: what trustproof can tell about a running sandbox."""

from __future__ import annotations

from trustproof.chaos.steady import check, sample
from trustproof.chaostoolkit.session import session
from trustproof.scrub import scrub


def matrix_holds(spec: str, sample_size: int = 3, target: str | None = None) -> bool:
    """A sample of the access matrix holds right now: `sample_size` allowed cells allowed and as
    many refused cells refused (on `target`, else spread over every service)."""
    running = session(spec)
    services = (target,) if target else tuple(running.sandbox.spec.services)
    probes = sample(running.sandbox.spec, services, sample_size)
    return running.run(check(running.env, probes)).held


def matrix_report(spec: str, sample_size: int = 3) -> dict[str, object]:
    """The same check, with what was refused or allowed against the spec (for the journal)."""
    running = session(spec)
    probes = sample(running.sandbox.spec, tuple(running.sandbox.spec.services), sample_size)
    found = running.run(check(running.env, probes))
    return {
        "held": found.held,
        "requests": found.requests,
        "refused": [scrub(text) for text in found.refused],
        "allowed_against_the_spec": [scrub(text) for text in found.over],
    }


def last_experiment_passed(spec: str) -> bool:
    """Whether the last `actions.run_experiment` on this sandbox passed."""
    last = session(spec).last
    return last is not None and last.verdict == "pass"
