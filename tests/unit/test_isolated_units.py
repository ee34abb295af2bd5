"""The isolated backend's pure parts: backend choice, hub addressing, namespace ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from trustproof.errors import SandboxError
from trustproof.sandbox import choice, isolated
from trustproof.sandbox.hub import (
    CANARY_ADDRESSES,
    hub_commands,
    service_address,
    service_commands,
    veth_commands,
)
from trustproof.sandbox.isolated import Peer
from trustproof.sandbox.netns import NAME_FORM, Ledger
from trustproof.spec import load_spec


def test_local_is_local_whatever_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice, "isolation_missing", lambda: None)
    notices: list[str] = []
    assert choice.resolve_choice("local", "isolated", notices.append) == "local"
    assert choice.resolve_choice(None, "local", notices.append) == "local"
    assert notices == []


def test_auto_is_isolated_where_the_host_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice, "isolation_missing", lambda: None)
    notices: list[str] = []
    assert choice.resolve_choice(None, "auto", notices.append) == "isolated"
    assert choice.resolve_choice("isolated", "local", notices.append) == "isolated"
    assert notices == []


def test_auto_falls_back_to_local_with_one_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice, "isolation_missing", lambda: "not running as root")
    notices: list[str] = []
    assert choice.resolve_choice("auto", "isolated", notices.append) == "local"
    assert notices == ["backend: local (no network isolation: not running as root)"]


def test_an_explicit_isolated_the_host_cannot_run_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(choice, "isolation_missing", lambda: "nftables' `nft` is not installed")
    with pytest.raises(SandboxError, match="cannot run here: nftables") as caught:
        choice.resolve_choice("isolated", "auto", lambda _: None)
    assert "--backend local" in caught.value.hint


def test_an_unknown_choice_is_an_error() -> None:
    with pytest.raises(SandboxError, match="unknown backend 'docker'"):
        choice.resolve_choice("docker", "auto", lambda _: None)


def test_service_addresses_are_on_the_hub_subnet_after_the_hub() -> None:
    assert [service_address(i) for i in range(3)] == ["10.77.0.2", "10.77.0.3", "10.77.0.4"]
    assert service_address(300) == "10.77.1.46"
    with pytest.raises(ValueError, match="no address left"):
        service_address(65_533)


def test_the_hub_holds_the_bridge_and_the_canary_addresses() -> None:
    commands = hub_commands().splitlines()
    assert commands[:2] == ["link set lo up", "link add br0 type bridge"]
    assert "addr add 10.77.0.1/16 dev br0" in commands
    for address in CANARY_ADDRESSES:
        assert f"addr add {address}/32 dev br0" in commands
    assert commands[-1] == "link set br0 up"


def test_each_veth_is_made_between_the_hub_and_a_service_namespace_only() -> None:
    commands = veth_commands(["tp-0123abcd-orders", "tp-0123abcd-payments"]).splitlines()
    assert commands[0] == "link add v0 type veth peer name eth0 netns tp-0123abcd-orders"
    assert commands[3] == "link add v1 type veth peer name eth0 netns tp-0123abcd-payments"
    assert all("netns tp-" in line for line in commands if "type veth" in line)
    assert service_commands(1).splitlines() == [
        "link set lo up",
        "addr add 10.77.0.3/16 dev eth0",
        "link set eth0 up",
        "route add default via 10.77.0.1",
    ]


def test_the_ledger_keeps_only_the_sandbox_own_names(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.add("tp-0123abcd-hub")
    ledger.add("tp-0123abcd-orders")
    ledger.add("tp-0123abcd-orders")
    (tmp_path / "netns").write_text(
        (tmp_path / "netns").read_text() + "default\n../../etc\ntp-XYZ-hub\n"
    )
    assert ledger.names() == ["tp-0123abcd-hub", "tp-0123abcd-orders"]
    assert (tmp_path / "netns").stat().st_mode & 0o777 == 0o600
    ledger.clear()
    assert ledger.names() == []


def test_namespace_names_have_the_pinned_form() -> None:
    assert NAME_FORM.match("tp-0123abcd-order-items.v2")
    for bad in ("tp-0123abcd-", "tp-0123ABCD-x", "x-0123abcd-y", "tp-0123abcd-../x"):
        assert not NAME_FORM.match(bad), bad


def test_each_service_may_reach_the_token_service_its_egress_and_its_datastores(
    shop_spec_path: Path,
) -> None:
    spec = load_spec(shop_spec_path)
    egress = {
        ("storefront", "orders"): "http://127.0.0.1:4001",
        ("storefront", "payments"): "http://127.0.0.1:4002",
        ("orders", "payments"): "http://127.0.0.1:4003",
    }
    peers = isolated.allowed_peers(
        spec, "https://127.0.0.1:4000", egress, {"shopdb": ("127.0.0.1", 5432)}
    )
    token, db = (
        Peer("127.0.0.1", 4000, "token-service"),
        Peer("127.0.0.1", 5432, "datastore:shopdb"),
    )
    assert peers == {
        "storefront": [
            token,
            Peer("127.0.0.1", 4001, "egress:orders"),
            Peer("127.0.0.1", 4002, "egress:payments"),
            db,
        ],
        "orders": [token, Peer("127.0.0.1", 4003, "egress:payments"), db],
        "payments": [token, db],  # calls nobody: no egress proxy to reach
    }
    # a datastore the service has no role in is not reachable from its namespace
    shopdb = spec.datastores["shopdb"]
    roles = {name: grants for name, grants in shopdb.roles.items() if name != "payments"}
    fewer = replace(spec, datastores={"shopdb": replace(shopdb, roles=roles)})
    assert isolated.allowed_peers(fewer, "https://127.0.0.1:4000", egress, {"shopdb": ("h", 1)})[
        "payments"
    ] == [token]
