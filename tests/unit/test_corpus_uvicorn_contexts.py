"""The uvicorn corpus target's TLS reload (corpus/uvicorn-fastapi/contexts.py), without sockets:
handshakes over memory BIOs against the contexts the target builds with its own
`tokencheck.server_context`, from files written by the sandbox's CA.

Why the target swaps a fresh context per connection instead of loading the new CRL into the one
uvicorn holds: OpenSSL checks a certificate against its issuer's CRL with the latest lastUpdate,
and of two with the same lastUpdate (whole seconds) against the first loaded. Two revocations
within one second (the suite revokes one certificate per caller, moments apart) then leave the
second revoked certificate accepted. The first test shows exactly that, deterministically.
"""

from __future__ import annotations

import importlib.util
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509

from trustproof.clock import ManualClock
from trustproof.identity import CertificateAuthority, Svid

TARGET = Path(__file__).resolve().parents[2] / "corpus" / "uvicorn-fastapi"


def start() -> datetime:
    """A tenth of a second into the current second (OpenSSL judges validity by the real time)."""
    return datetime.now(UTC).replace(microsecond=100_000)


def load(name: str) -> ModuleType:
    """A module of the target, under a name of its own (gunicorn-flask has a tokencheck too)."""
    spec = importlib.util.spec_from_file_location(f"uvicorn_target_{name}", TARGET / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Files:
    """The sandbox's files for the ledger service, as its CA writes them (`crl.pem` rewritten
    in place, like the sandbox does after each revocation)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.clock = ManualClock(start())
        self.clients: dict[str, Svid] = {}
        self.ca = CertificateAuthority("ledger.test", self.clock)
        self.write_server(self.ca.issue("ledger", timedelta(hours=1), dns=["ledger.test"]))
        (directory / "bundle.pem").write_bytes(self.ca.bundle_pem())
        self.write_crl()

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def write_server(self, svid: Svid) -> None:
        self.server = svid
        (self.directory / "cert.pem").write_bytes(svid.cert_chain_pem())
        (self.directory / "key.pem").write_bytes(svid.key_pem())

    def write_crl(self) -> None:
        (self.directory / "crl.pem").write_bytes(self.ca.crl_pem())

    def client(self, name: str) -> ssl.SSLContext:
        svid = self.ca.issue(name, timedelta(hours=1))
        (self.directory / f"{name}.pem").write_bytes(svid.cert_chain_pem() + svid.key_pem())
        self.clients[name] = svid
        context = ssl.create_default_context(cafile=self.path("bundle.pem"))
        context.check_hostname = False
        context.load_cert_chain(self.path(f"{name}.pem"))
        return context

    def revoke(self, name: str, after: float) -> None:
        self.clock.advance(after)
        self.ca.revoke(self.clients[name])
        self.write_crl()


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def tokencheck(files: Files, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for setting, value in {
        "SPIFFE_ID": "spiffe://ledger.test/ledger",
        "TOKEN_URL": "https://127.0.0.1:1/token",
        "CERT_FILE": files.path("cert.pem"),
        "KEY_FILE": files.path("key.pem"),
        "BUNDLE_FILE": files.path("bundle.pem"),
        "CRL_FILE": files.path("crl.pem"),
    }.items():
        monkeypatch.setenv(f"TRUSTPROOF_{setting}", value)
    return load("tokencheck")


Contexts = load("contexts").Contexts


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[str, int | None]:
    """("accepted", the serial of the server's certificate) or ("refused", None): a TLS
    handshake over memory BIOs, each side driven until the server has judged the client."""
    to_server, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    to_client, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_side = server.wrap_bio(to_server, from_server, server_side=True)
    client_side = client.wrap_bio(to_client, from_client, server_side=False)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side, out, peer_in in (
            ("client", client_side, from_client, to_server),
            ("server", server_side, from_server, to_client),
        ):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError:
                    return "refused", None
            peer_in.write(out.read())
        if done["client"] and done["server"]:
            der = client_side.getpeercert(binary_form=True)
            assert der is not None
            return "accepted", ssl_serial(der)
    raise AssertionError("the handshake did not finish")


def ssl_serial(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


def test_a_crl_added_within_the_same_second_lets_a_revoked_certificate_in(
    files: Files, tokencheck: ModuleType
) -> None:
    """The failing twin: the target's former reload (the new CRL loaded into the context it
    holds) accepts the second certificate revoked within a second; a second later it would not."""
    alice, bob, carol = files.client("alice"), files.client("bob"), files.client("carol")
    held = tokencheck.server_context()  # the CRL of the start: nothing revoked
    assert handshake(held, alice)[0] == "accepted"
    files.revoke("alice", after=1.0)  # the next second: a newer CRL
    held.load_verify_locations(files.path("crl.pem"))  # SIGHUP
    files.revoke("bob", after=0.2)  # the same second: the same lastUpdate
    held.load_verify_locations(files.path("crl.pem"))  # SIGHUP
    assert handshake(held, alice)[0] == "refused"
    assert handshake(held, bob)[0] == "accepted"  # on the CRL loaded last, yet let in

    files.revoke("carol", after=1.0)  # the next second: this CRL is the newest
    held.load_verify_locations(files.path("crl.pem"))  # SIGHUP
    assert handshake(held, bob)[0] == "refused"
    assert handshake(held, carol)[0] == "refused"


def test_each_new_connection_gets_the_context_of_the_current_files(
    files: Files, tokencheck: ModuleType
) -> None:
    alice, bob, carol = files.client("alice"), files.client("bob"), files.client("carol")
    contexts = Contexts(tokencheck.server_context)
    listening = contexts.listening()
    assert handshake(listening, bob)[0] == "accepted"
    files.revoke("alice", after=0.2)
    contexts.reload()
    files.revoke("bob", after=0.2)  # the same second
    contexts.reload()
    assert handshake(listening, alice)[0] == "refused"
    assert handshake(listening, bob)[0] == "refused"
    assert handshake(listening, carol) == ("accepted", files.server.serial)

    rotated = files.ca.issue("ledger", timedelta(hours=1), dns=["ledger.test"])
    files.write_server(rotated)
    contexts.reload()
    assert handshake(listening, carol) == ("accepted", rotated.serial)


def test_without_the_hand_over_the_crl_of_the_start_stays(
    files: Files, tokencheck: ModuleType
) -> None:
    """The twin of the seeded mistake `crl-not-reloaded` (mistakes.yaml)."""
    alice = files.client("alice")
    contexts = Contexts(tokencheck.server_context)
    listening = contexts.listening()
    listening.sni_callback = None
    files.revoke("alice", after=2.0)
    contexts.reload()
    assert handshake(listening, alice)[0] == "accepted"
    assert handshake(contexts.current, alice)[0] == "refused"


def test_a_failed_reload_keeps_the_previous_context(
    files: Files, tokencheck: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = files.client("alice")
    contexts = Contexts(tokencheck.server_context)
    listening = contexts.listening()
    files.revoke("alice", after=0.2)
    contexts.reload()
    before = contexts.current
    (files.directory / "crl.pem").unlink()  # a CRL that is not there (a chaos fault)
    contexts.reload()
    assert contexts.current is before
    assert handshake(listening, alice)[0] == "refused"
    assert "reload failed, keeping the previous files: FileNotFoundError" in capsys.readouterr().err


class Nesting:
    """A build that is interrupted by a SIGHUP after it read the files (Python runs the second
    handler nested inside the first): the files change, then the handler runs."""

    def __init__(self, build: Callable[[], ssl.SSLContext], files: Files) -> None:
        self.build = build
        self.files = files
        self.handler: Callable[[], None] | None = None  # armed: interrupt the next build

    def __call__(self) -> ssl.SSLContext:
        context = self.build()  # the files as they were
        handler, self.handler = self.handler, None
        if handler is not None:
            self.files.revoke("alice", after=0.2)
            handler()  # SIGHUP
        return context


def test_a_sighup_during_a_reload_leaves_the_newest_files(
    files: Files, tokencheck: ModuleType
) -> None:
    alice = files.client("alice")
    nesting = Nesting(tokencheck.server_context, files)
    contexts = Contexts(nesting)
    nesting.handler = contexts.reload
    contexts.reload()
    assert handshake(contexts.listening(), alice)[0] == "refused"


def test_a_nested_reload_would_leave_the_older_files(files: Files, tokencheck: ModuleType) -> None:
    """The twin: a handler that simply rebuilds ends with the context of the interrupted build,
    read before the revocation."""
    alice = files.client("alice")
    nesting = Nesting(tokencheck.server_context, files)
    current: list[ssl.SSLContext] = []

    def naive() -> None:
        current.append(nesting())

    nesting.handler = naive
    naive()
    assert handshake(current[-1], alice)[0] == "accepted"
