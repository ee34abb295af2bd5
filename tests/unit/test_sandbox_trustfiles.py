"""The files and values a service that validates tokens itself is given (issue 12, Deliver 8),
without processes or sockets: the environment contract, the JWKS / signing-key / cert+key / CRL
files, when they are rewritten and who is reloaded then."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import load_pem_x509_certificates

from trustproof.chaos.scenario import Part, Recorder, combine, own_validators
from trustproof.clock import ManualClock
from trustproof.errors import SpecError
from trustproof.identity import CertificateAuthority, Rotator
from trustproof.sandbox.rundir import RunDir
from trustproof.sandbox.services import service_env, template_values
from trustproof.sandbox.trustfiles import (
    CERT_KEY_FILE,
    CRL_FILE,
    JWKS_FILE,
    SIGNING_KEY_CURRENT_FILE,
    SIGNING_KEY_PREVIOUS_FILE,
    SIGNING_KEYS_FILE,
    TrustFileWatch,
    TrustState,
    cert_key_bytes,
    signing_keys_pem,
    write_cert_key,
    write_trust_files,
)
from trustproof.spec import parse_spec
from trustproof.spec.model import Spec
from trustproof.tokens import KeyRing

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
SPEC = """\
trust_domain: stock.test
services:
  inventory:
    command: [python, inventory.py]
    port: 18201
    ingress: {gateway: none, revocation: introspection}
    reload: sighup
  ledger:
    command: [python, ledger.py]
    port: 18202
    ingress: {gateway: none, token: optional}
  shop:
    command: [python, shop.py]
    port: 18203
    reload: restart
"""


class NoDatastores:
    def dsns_for(self, workload: str, cert: Path, key: Path, bundle: Path) -> dict[str, str]:
        return {}


def spec(tmp_path: Path, text: str = SPEC) -> Spec:
    return parse_spec(text, tmp_path / "trustproof.yaml")


def rotator(tmp_path: Path, clock: ManualClock, name: str = "inventory") -> Rotator:
    ca = CertificateAuthority("stock.test", clock)
    return Rotator(ca, clock, name, timedelta(minutes=5), tmp_path / "id" / name)


def env_of(tmp_path: Path, the_spec: Spec, name: str = "inventory") -> dict[str, str]:
    run = RunDir.create(tmp_path / "run")
    return service_env(
        the_spec,
        name,
        run,
        rotator(tmp_path, ManualClock(NOW), name),
        token_url="https://127.0.0.1:4443/token",
        egress={},
        datastores=NoDatastores(),
    )


# -- the environment contract --------------------------------------------------------------------


def test_every_service_is_told_issuer_trust_domain_audience_and_the_key_files(
    tmp_path: Path,
) -> None:
    env = env_of(tmp_path, spec(tmp_path))
    directory = tmp_path / "id" / "inventory"
    assert env["TRUSTPROOF_ISSUER"] == "https://127.0.0.1:4443"
    assert env["TRUSTPROOF_TRUST_DOMAIN"] == "stock.test"
    assert env["TRUSTPROOF_AUDIENCE"] == "spiffe://stock.test/inventory"
    assert env["TRUSTPROOF_JWKS_FILE"] == str(directory / JWKS_FILE)
    assert env["TRUSTPROOF_SIGNING_KEYS_FILE"] == str(directory / SIGNING_KEYS_FILE)
    assert env["TRUSTPROOF_SIGNING_KEY_CURRENT_FILE"] == str(directory / SIGNING_KEY_CURRENT_FILE)
    assert env["TRUSTPROOF_SIGNING_KEY_PREVIOUS_FILE"] == str(directory / SIGNING_KEY_PREVIOUS_FILE)
    assert env["TRUSTPROOF_CERT_KEY_FILE"] == str(directory / CERT_KEY_FILE)
    assert env["TRUSTPROOF_CRL_FILE"] == str(directory / CRL_FILE)


def test_the_same_values_are_template_variables(tmp_path: Path) -> None:
    values = template_values(env_of(tmp_path, spec(tmp_path)))
    text = jinja2.Template(
        "crt {{ cert_key_file }} jwt {{ signing_keys_file }} iss {{ issuer }} "
        "aud {{ audience }} td {{ trust_domain }} jwks {{ jwks_file }} crl {{ crl_file }}",
        undefined=jinja2.StrictUndefined,
    ).render(values)
    assert "iss https://127.0.0.1:4443 aud spiffe://stock.test/inventory td stock.test" in text
    assert "cert-key.pem jwt " in text
    assert "signing-keys.pem" in text
    assert "jwks.json" in text


def test_an_explicit_issuer_wins_over_the_token_url(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    env = service_env(
        spec(tmp_path),
        "inventory",
        run,
        rotator(tmp_path, ManualClock(NOW)),
        token_url="http://127.0.0.1:9/token",
        egress={},
        datastores=NoDatastores(),
        issuer="https://issuer.test",
    )
    assert env["TRUSTPROOF_ISSUER"] == "https://issuer.test"


# -- the files -----------------------------------------------------------------------------------


def test_jwks_and_pem_keys_hold_the_active_and_the_retired_key_during_overlap(
    tmp_path: Path,
) -> None:
    clock = ManualClock(NOW)
    keys = KeyRing(clock)
    first = keys.active
    keys.note_issued(first.kid, NOW + timedelta(seconds=60))  # a token still out there
    second = keys.rotate()
    write_trust_files(tmp_path, keys, b"crl")
    jwks = json.loads((tmp_path / JWKS_FILE).read_text())
    assert [k["kid"] for k in jwks["keys"]] == [second.kid, first.kid]
    pem = (tmp_path / SIGNING_KEYS_FILE).read_bytes()
    loaded = [
        serialization.load_pem_public_key(b"-----BEGIN PUBLIC KEY-----" + block)
        for block in pem.split(b"-----BEGIN PUBLIC KEY-----")[1:]
    ]
    assert all(isinstance(key, ec.EllipticCurvePublicKey) for key in loaded)
    numbers = [key.public_numbers() for key in loaded]  # type: ignore[union-attr]
    assert numbers == [second.public_key.public_numbers(), first.public_key.public_numbers()]
    assert f"# kid {second.kid}".encode() in pem
    current = serialization.load_pem_public_key((tmp_path / SIGNING_KEY_CURRENT_FILE).read_bytes())
    previous = serialization.load_pem_public_key(
        (tmp_path / SIGNING_KEY_PREVIOUS_FILE).read_bytes()
    )
    assert current.public_numbers() == second.public_key.public_numbers()  # type: ignore[union-attr]
    assert previous.public_numbers() == first.public_key.public_numbers()  # type: ignore[union-attr]
    assert (tmp_path / CRL_FILE).read_bytes() == b"crl"
    clock.advance(timedelta(seconds=61))
    keys.prune()
    write_trust_files(tmp_path, keys, b"crl")
    assert signing_keys_pem(keys).count(b"BEGIN PUBLIC KEY") == 1
    # no retired key left: "previous" is the active key again, so an or-ed check stays valid
    assert (tmp_path / SIGNING_KEY_PREVIOUS_FILE).read_bytes() == (
        tmp_path / SIGNING_KEY_CURRENT_FILE
    ).read_bytes()
    assert [k["kid"] for k in json.loads((tmp_path / JWKS_FILE).read_text())["keys"]] == [
        second.kid
    ]


def test_cert_key_file_is_chain_then_key_and_private(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    svid = CertificateAuthority("stock.test", clock, intermediate=True).issue(
        "inventory", timedelta(minutes=5)
    )
    write_cert_key(tmp_path, svid)
    path = tmp_path / CERT_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data == cert_key_bytes(svid)
    chain = load_pem_x509_certificates(data)
    assert chain[0].serial_number == svid.serial
    assert len(chain) == 2
    assert data.index(b"PRIVATE KEY") > data.rindex(b"END CERTIFICATE")
    serialization.load_pem_private_key(
        data[data.index(b"-----BEGIN", data.rindex(b"END CERT")) :], None
    )
    assert not list(tmp_path.glob(".*.tmp"))  # written through a rename


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    keys = KeyRing(ManualClock(NOW))
    write_trust_files(tmp_path, keys, b"first")
    (tmp_path / f".{JWKS_FILE}.tmp").mkdir()  # the temporary name is taken: the write fails
    keys.rotate()
    with pytest.raises(IsADirectoryError):
        write_trust_files(tmp_path, keys, b"second")
    assert json.loads((tmp_path / JWKS_FILE).read_text())["keys"][0]["kid"] != keys.active.kid
    assert (tmp_path / CRL_FILE).read_bytes() == b"first"


# -- when they are rewritten, and who is reloaded ------------------------------------------------


def test_trust_state_names_what_changed() -> None:
    before = TrustState(("a",), b"crl-1")
    assert TrustState(("a",), b"crl-1").changes(before) == ()
    assert TrustState(("b", "a"), b"crl-1").changes(before) == ("keys",)
    assert TrustState(("a",), b"crl-2").changes(before) == ("crl",)
    assert before.changes(None) == ("keys", "crl")


def test_the_watch_rewrites_and_reloads_on_rotation_prune_and_revocation(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    keys = KeyRing(clock)
    ca = CertificateAuthority("stock.test", clock)
    directories = {"inventory": tmp_path / "inventory", "shop": tmp_path / "shop"}
    for directory in directories.values():
        directory.mkdir()
    reloaded: list[str] = []
    watch = TrustFileWatch(keys, ca, directories, reloaded.append, ["inventory"])
    assert watch.check() == ("keys", "crl")  # the first write: nobody is reloaded
    assert reloaded == []
    assert (tmp_path / "shop" / JWKS_FILE).exists()
    keys.subscribe(watch.check)
    assert watch.check() == ()  # nothing changed: nothing written, nobody reloaded
    keys.note_issued(keys.active.kid, NOW + timedelta(seconds=10))
    keys.rotate()  # pushed by the ring's subscription
    assert reloaded == ["inventory"]
    kids = [k["kid"] for k in json.loads((tmp_path / "shop" / JWKS_FILE).read_text())["keys"]]
    assert kids == list(keys.kids)
    assert len(kids) == 2
    clock.advance(timedelta(seconds=11))
    assert keys.prune()  # the retired key leaves: rewritten and reloaded again
    assert reloaded == ["inventory", "inventory"]
    assert len(json.loads((tmp_path / "inventory" / JWKS_FILE).read_text())["keys"]) == 1
    ca.revoke(ca.issue("alice", timedelta(minutes=5)))
    assert watch.check() == ("crl",)  # the ticker's check sees the revocation
    assert (tmp_path / "inventory" / CRL_FILE).read_bytes() == ca.crl_pem()
    assert reloaded == ["inventory"] * 3
    assert watch.rewrites == 3


def test_files_a_fault_holds_are_left_alone_until_it_ends(tmp_path: Path) -> None:
    """crl-fault removes a service's CRL file: a tick meanwhile (a revocation) must not put it
    back under the fault, nor reload that service; the others are written and reloaded as ever,
    and the held files are the current ones again once the fault ends."""
    clock = ManualClock(NOW)
    keys = KeyRing(clock)
    ca = CertificateAuthority("stock.test", clock)
    directories = {"inventory": tmp_path / "inventory", "ledger": tmp_path / "ledger"}
    for directory in directories.values():
        directory.mkdir()
    reloaded: list[str] = []
    watch = TrustFileWatch(keys, ca, directories, reloaded.append, ["inventory", "ledger"])
    watch.check()
    with watch.held(["inventory"]):
        (tmp_path / "inventory" / CRL_FILE).unlink()  # the fault
        ca.revoke(ca.issue("alice", timedelta(minutes=5)))
        assert watch.check() == ("crl",)
        assert not (tmp_path / "inventory" / CRL_FILE).exists()  # still the fault's
        assert (tmp_path / "ledger" / CRL_FILE).read_bytes() == ca.crl_pem()
        assert reloaded == ["ledger"]
    assert (tmp_path / "inventory" / CRL_FILE).read_bytes() == ca.crl_pem()


def test_a_key_ring_subscriber_that_raises_does_not_stop_the_rotation() -> None:
    keys = KeyRing(ManualClock(NOW))
    seen: list[int] = []

    def broken() -> None:
        raise RuntimeError("boom")

    keys.subscribe(broken)
    keys.subscribe(lambda: seen.append(1))
    fresh = keys.rotate()
    assert keys.active is fresh
    assert seen == [1]
    assert len(keys.prune()) == 1  # the retired key signed nothing: it goes, and is told
    assert seen == [1, 1]
    assert keys.prune() == []  # nothing dropped: nobody told
    assert seen == [1, 1]


# -- which services the lifecycle scenarios test themselves --------------------------------------


def test_own_validators_are_gateway_none_services_requiring_a_token(tmp_path: Path) -> None:
    the_spec = spec(tmp_path)
    assert own_validators(the_spec) == ("inventory",)
    assert own_validators(the_spec, revocation="introspection") == ("inventory",)
    assert own_validators(the_spec, revocation="crl") == ()
    assert the_spec.services["ledger"].ingress.revocation == "none"


def test_an_unknown_revocation_mode_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="revocation"):
        spec(tmp_path, SPEC.replace("revocation: introspection", "revocation: ocsp"))


def test_a_scenario_fails_when_any_part_fails() -> None:
    passed = combine(Recorder("x"), [Part(True, "gateways ok"), Part(True, "inventory ok")])
    assert (passed.verdict, passed.summary) == ("pass", "gateways ok; inventory ok")
    failed = combine(Recorder("x"), [Part(True, "gateways ok"), Part(False, "inventory stale")])
    assert (failed.verdict, failed.summary) == ("fail", "inventory stale")
