"""`trustproof.sandbox.reloads.settled`: when a reload is over, from the worker processes seen
before the signal and now (nginx replaces its workers; its old ones keep serving a while)."""

from __future__ import annotations

from trustproof.sandbox.reloads import QUIET_S, UNCHANGED_S, settled

OLD, NEW = frozenset({101}), frozenset({202})


def test_a_server_of_one_process_has_nothing_to_wait_for() -> None:
    assert settled(frozenset(), frozenset(), 0.0, 0.0)


def test_not_over_while_an_old_worker_still_serves() -> None:
    assert not settled(OLD, OLD | NEW, 5.0, 5.0)  # nginx: new workers started, old not gone


def test_over_once_every_old_worker_is_gone_and_none_changed_for_a_while() -> None:
    assert not settled(OLD, NEW, 5.0, QUIET_S / 2)  # a second reload may be starting
    assert settled(OLD, NEW, 5.0, QUIET_S)


def test_workers_never_replaced_are_waited_for_a_moment_only() -> None:
    """A reload the server refused (nginx without its CRL file keeps its configuration)."""
    assert not settled(OLD, OLD, UNCHANGED_S / 2, UNCHANGED_S / 2)
    assert settled(OLD, OLD, UNCHANGED_S, UNCHANGED_S)
