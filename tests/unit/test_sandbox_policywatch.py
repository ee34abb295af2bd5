"""The sandbox's policy watcher without sockets or an event loop: what counts as a change, what
a reload records (the polling loop runs in tests/integration/test_sandbox_policy_reload.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from trustproof.audit import AuditCompletion, AuditEvent, MemorySink
from trustproof.clock import ManualClock
from trustproof.policy.reload import PolicyReload
from trustproof.sandbox.policywatch import PolicyWatch, fingerprint, policy_paths
from trustproof.spec import load_spec

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(SHOP, target)
    return target


def test_the_policy_files_and_the_schema_are_watched(shop: Path) -> None:
    paths = policy_paths(load_spec(shop / "trustproof.yaml"))
    assert [Path(p).name for p in paths] == ["shop.cedar", "shop.cedarschema"]


def test_a_rename_over_an_edit_in_place_and_a_removal_are_changes(shop: Path) -> None:
    policy = shop / "policies" / "shop.cedar"
    paths = (str(policy),)
    first = fingerprint(paths)
    assert fingerprint(paths) == first  # nothing happened: no change
    staging = policy.with_suffix(".new")
    staging.write_text(policy.read_text())  # same text, same size...
    os.replace(staging, policy)  # ...but a new inode
    renamed = fingerprint(paths)
    assert renamed != first
    with policy.open("a") as handle:
        handle.write("\n")
    assert fingerprint(paths) != renamed
    policy.unlink()
    gone = fingerprint(paths)
    assert gone == ((str(policy), "error", 2),)


class Refusing(MemorySink):
    def record(self, event: AuditEvent) -> None:
        raise OSError("audit file removed")

    def complete(self, completion: AuditCompletion) -> None:
        raise OSError("audit file removed")


def test_a_reload_is_audited_and_reported(shop: Path) -> None:
    spec = load_spec(shop / "trustproof.yaml")
    sink = MemorySink()
    seen: list[PolicyReload] = []
    watch = PolicyWatch(spec, ManualClock(), sink, seen.append)
    (shop / "policies" / "shop.cedar").write_text("permit (principal, action")

    event = watch.reloader.check("request")
    assert event is not None
    watch.record(event)
    assert event.outcome == "rejected"
    assert seen == [event]
    (audited,) = sink.events()
    assert (audited.method, audited.service, audited.stage, audited.allowed) == (
        "RELOAD",
        "*",
        "policy",
        False,
    )
    assert audited.reason.startswith("policy-reload-rejected: ")
    assert "shop.cedar:1:" in audited.reason
    assert watch.holder.version == 1


def test_an_unwritable_audit_does_not_undo_an_accepted_swap(shop: Path) -> None:
    spec = load_spec(shop / "trustproof.yaml")
    watch = PolicyWatch(spec, ManualClock(), Refusing())
    event = watch.reloader.check("request")
    assert event is not None
    watch.record(event)  # logs the audit failure, raises nothing
    assert (event.outcome, watch.holder.version) == ("accepted", 2)
    assert watch.reloader.summary()["accepted"] == 1
