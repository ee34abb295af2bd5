"""Policy hot reload without I/O of its own: a fake file fingerprint, a manual clock, the shop's
policies in a temporary copy. Each accepted reload next to its refused twin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from policy_support import ShopCopy

from trustproof.clock import ManualClock
from trustproof.policy import AccessRequest, CedarPolicyEngine, Directory, load_policies
from trustproof.policy.reload import PolicyReloader, ReloadablePolicyEngine
from trustproof.policy.sources import PolicyBundle

READ_ORDERS = AccessRequest(
    principal_kind="workload",
    principal="storefront",
    action="GET",
    service="orders",
    route="/orders",
    source_ip="127.0.0.1",
    hour_utc=12,
)
STOREFRONT_READS = "storefront-reads-orders"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


class FakeFiles:
    """The file source: a version number standing for (inode, mtime, size), bumped by `touch`."""

    def __init__(self, shop: ShopCopy) -> None:
        self.shop = shop
        self.version = 0
        self.during_load: Callable[[], None] = lambda: None

    def fingerprint(self) -> int:
        return self.version

    def touch(self) -> None:
        self.version += 1

    def load(self) -> PolicyBundle:
        bundle = load_policies(self.shop.spec())
        self.during_load()
        return bundle


@pytest.fixture
def files(shop: ShopCopy) -> FakeFiles:
    return FakeFiles(shop)


@pytest.fixture
def reloader(shop: ShopCopy, files: FakeFiles) -> PolicyReloader:
    spec = shop.spec()
    holder = ReloadablePolicyEngine(CedarPolicyEngine.from_spec(spec))
    return PolicyReloader(
        holder,
        Directory.from_spec(spec),
        fingerprint=files.fingerprint,
        load=files.load,
        clock=ManualClock(datetime(2030, 1, 1, 12, tzinfo=UTC)),
    )


def drop_storefront_reads(text: str) -> str:
    start = text.index(f'@id("{STOREFRONT_READS}")')
    end = text.index("@id(", start + 1)
    return text[:start] + text[end:]


def test_a_valid_new_set_is_swapped_in_for_every_holder_at_once(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    holder = reloader.holder
    gateways = [holder, holder]  # every gateway holds the same object
    assert all(g.decide(READ_ORDERS).allowed for g in gateways)
    shop.edit_policies(drop_storefront_reads)
    files.touch()
    event = reloader.check()
    assert event is not None
    assert (event.outcome, event.version, event.trigger, event.reason) == (
        "accepted",
        2,
        "watch",
        "",
    )
    assert event.time == "2030-01-01T12:00:00Z"
    assert event.policies == 8
    for gateway in gateways:
        decision = gateway.decide(READ_ORDERS)
        assert (decision.allowed, decision.reason) == (False, "no-matching-permit")
    assert reloader.summary()["accepted"] == 1


def test_twin_an_unseen_change_changes_nothing(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    """Until the fingerprint moves, the old policies stay in force (the watcher's only trigger)."""
    shop.edit_policies(drop_storefront_reads)
    assert reloader.check() is None
    assert reloader.holder.decide(READ_ORDERS).allowed
    assert reloader.holder.version == 1
    assert list(reloader.events) == []
    assert reloader.summary()["accepted"] == 0


def test_the_decision_cache_does_not_outlive_the_swap(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    holder = reloader.holder
    holder.decide(READ_ORDERS)
    assert holder.decide(READ_ORDERS).cached  # remembered by version 1
    shop.edit_policies(drop_storefront_reads)
    files.touch()
    reloader.check()
    decision = holder.decide(READ_ORDERS)
    assert (decision.allowed, decision.cached) == (False, False)


def test_a_newly_permitted_call_is_allowed_after_the_swap(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    payments = AccessRequest(
        principal_kind="workload",
        principal="storefront",
        action="GET",
        service="payments",
        route="/payments/{id}",
        source_ip="127.0.0.1",
        hour_utc=12,
    )
    assert not reloader.holder.decide(payments).allowed
    shop.add_policy(
        '@id("storefront-reads-payments")\n'
        'permit (principal == Workload::"storefront", action == Action::"GET",\n'
        '        resource == Route::"payments /payments/{id}");\n'
    )
    files.touch()
    assert reloader.check() is not None
    assert reloader.holder.decide(payments).allowed


@pytest.mark.parametrize(
    ("broken", "fragment"),
    [
        (lambda text: text + "\npermit (principal, action, resource", "Cedar syntax error"),
        (
            lambda text: text.replace('Action::"GET"', 'Action::"FETCH"', 1),
            "does not validate against the schema",
        ),
        (
            lambda text: text + '\n@id("catalogue-browse")\nforbid (principal, action, resource);',
            "duplicate @id",
        ),
        (lambda _: "", "empty"),
        (lambda _: "// nothing but a comment\n", "empty"),
    ],
)
def test_an_invalid_set_is_refused_and_the_old_one_kept(
    shop: ShopCopy,
    files: FakeFiles,
    reloader: PolicyReloader,
    broken: Callable[[str], str],
    fragment: str,
) -> None:
    original = shop.policy_file.read_text()
    shop.edit_policies(broken)
    files.touch()
    event = reloader.check()
    assert event is not None
    assert (event.outcome, event.version, event.policies) == ("rejected", 1, 0)
    assert fragment in event.reason
    assert reloader.holder.decide(READ_ORDERS).allowed  # the old policies still decide
    assert reloader.holder.version == 1
    assert reloader.summary()["rejected"] == 1
    # Seen: the same broken files are not retried at every poll...
    assert reloader.check() is None
    # ...and once fixed, they are picked up.
    shop.policy_file.write_text(drop_storefront_reads(original))
    files.touch()
    fixed = reloader.check()
    assert fixed is not None
    assert fixed.outcome == "accepted"


def test_a_rejection_names_the_file_and_line(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    line = shop.add_policy("permit (principal, action, resource) when { nope };")
    files.touch()
    event = reloader.check()
    assert event is not None
    assert event.outcome == "rejected"
    assert f"shop.cedar:{line}:" in event.reason


def test_deny_all_is_written_as_a_forbid_and_accepted(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    shop.edit_policies(lambda _: '@id("deny-all")\nforbid (principal, action, resource);\n')
    files.touch()
    event = reloader.check()
    assert event is not None
    assert event.outcome == "accepted"
    decision = reloader.holder.decide(READ_ORDERS)
    assert (decision.allowed, decision.reason, decision.policy_ids) == (
        False,
        "forbidden-by-policy",
        ("deny-all",),
    )


def test_files_changing_while_read_are_left_for_the_next_poll(
    shop: ShopCopy, files: FakeFiles, reloader: PolicyReloader
) -> None:
    shop.edit_policies(drop_storefront_reads)
    files.touch()
    files.during_load = files.touch  # a writer is still at work
    assert reloader.check() is None
    assert reloader.changed()
    assert reloader.holder.decide(READ_ORDERS).allowed
    requested = reloader.check("request")  # a caller asked: it is told why nothing changed
    assert requested is not None
    assert requested.outcome == "rejected"
    assert "changed while being read" in requested.reason
    files.during_load = lambda: None
    assert reloader.check() is not None
    assert not reloader.holder.decide(READ_ORDERS).allowed


def test_a_loader_that_fails_keeps_the_old_set(files: FakeFiles, reloader: PolicyReloader) -> None:
    def explode() -> None:
        raise OSError(f"disk gone, Authorization: Bearer {TOKEN}")

    files.during_load = explode
    files.touch()
    event = reloader.check()
    assert event is not None
    assert event.outcome == "rejected"
    assert "disk gone" in event.reason
    assert TOKEN not in event.reason  # scrubbed
    assert reloader.holder.decide(READ_ORDERS).allowed


def test_a_requested_reload_of_unchanged_files_is_accepted_as_a_new_version(
    reloader: PolicyReloader,
) -> None:
    event = reloader.check("request")
    assert event is not None
    assert (event.outcome, event.trigger, event.version) == ("accepted", "request", 2)
    assert reloader.holder.decide(READ_ORDERS).allowed


def test_the_record_is_bounded_and_the_counts_are_not(reloader: PolicyReloader) -> None:
    def unreadable() -> PolicyBundle:
        raise OSError("unreadable")

    failing = PolicyReloader(
        reloader.holder,
        reloader.directory,
        fingerprint=lambda: 0,
        load=unreadable,
        clock=reloader.clock,
    )
    for _ in range(150):
        event = failing.check("request")
        assert event is not None
        assert event.outcome == "rejected"
    summary = failing.summary()
    assert (summary["rejected"], summary["accepted"], summary["version"]) == (150, 0, 1)
    assert len(failing.events) == 100
    assert isinstance(summary["events"], list)
    assert len(summary["events"]) == 20
