"""The pytest plugin (entry point ``pytest11: trustproof``): the sandbox, clients, tokens and
certificates as fixtures, `assert_allowed`/`assert_denied`, and the generated zero-trust cases as
pytest items — a second driver beside `trustproof run`.

It does nothing unless a spec is configured, with ``--trustproof-spec PATH`` or the ini option
``trustproof_spec`` (relative to the ini file). Then:

* fixtures (session-scoped): ``trustproof_sandbox`` (a `LiveSandbox`: the real `Sandbox` on its
  own loop, started on first use, stopped at the end of the session), ``trustproof_client(name)``
  (a `Client` calling services as that persona or workload: its certificate and a bound token),
  ``trustproof_token(name, audience, bound_to=None)`` (a token string) and
  ``trustproof_cert(name)`` (`CertFiles`: cert.pem, key.pem 0600, bundle.pem in a temp dir);
* every case `trustproof run` would generate is collected as an item of the spec file, named by
  the case id and marked ``trustproof`` and ``trustproof_<family>``; ``-k`` and ``-m`` select
  them; ``--trustproof-no-cases`` (or ini ``trustproof_cases = false``) leaves them out.

    from trustproof.pytest_plugin import assert_allowed, assert_denied

    def test_alice_cannot_pay(trustproof_client):
        assert_denied(trustproof_client("alice").post("payments", "/payments"), stage="policy")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from trustproof.catalogue import CATALOGUE
from trustproof.pytest_plugin.session import SESSION, PluginSession

if TYPE_CHECKING:
    from trustproof.identity import Svid
    from trustproof.pytest_plugin.client import CertFiles, Client
    from trustproof.pytest_plugin.live import LiveSandbox

__all__ = ["assert_allowed", "assert_denied"]

FAMILIES = tuple(sorted({info.layer for info in CATALOGUE}))  # the probe ids' first part


def __getattr__(name: str) -> Any:
    """`assert_allowed`/`assert_denied` without importing the sandbox at plugin load."""
    if name in __all__:
        from trustproof.pytest_plugin import assertions  # noqa: PLC0415

        return getattr(assertions, name)
    raise AttributeError(name)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trustproof", "trustproof zero-trust sandbox")
    group.addoption(
        "--trustproof-spec",
        metavar="PATH",
        help="trustproof.yaml to start the sandbox from (enables the plugin).",
    )
    group.addoption(
        "--trustproof-run-dir",
        metavar="DIR",
        help="Run directory of the sandbox (logs, audit); default: a new temporary directory.",
    )
    group.addoption(
        "--trustproof-no-cases",
        action="store_true",
        help="Do not collect the generated zero-trust cases (fixtures only).",
    )
    parser.addini("trustproof_spec", "trustproof.yaml (relative to the ini file)", default="")
    parser.addini("trustproof_cases", "collect the generated cases", type="bool", default=True)


def _spec_path(config: pytest.Config) -> Path | None:
    option = config.getoption("trustproof_spec")
    if option:
        return Path(option).resolve()
    ini = str(config.getini("trustproof_spec") or "")
    if not ini:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return (base / ini).resolve()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "trustproof: a zero-trust case generated from the spec")
    for family in FAMILIES:
        config.addinivalue_line("markers", f"trustproof_{family}: a generated {family}.* case")
    spec = _spec_path(config)
    if spec is None:
        return  # not asked: the plugin stays out of the way
    if not spec.is_file():
        raise pytest.UsageError(
            f"trustproof: no spec at {spec} (from --trustproof-spec or ini trustproof_spec)\n"
            "    hint: point it at your trustproof.yaml; `trustproof init` writes a starter"
        )
    run_dir = config.getoption("trustproof_run_dir")
    cases = not config.getoption("trustproof_no_cases") and bool(config.getini("trustproof_cases"))
    config.stash[SESSION] = PluginSession(spec, Path(run_dir) if run_dir else None, cases)
    if cases and all(Path(arg.split("::")[0]).resolve() != spec for arg in config.args):
        config.args.append(str(spec))  # the spec file is the collector of the generated cases


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(SESSION, None)
    if session is None or not session.cases or session.collected:
        return None
    if file_path.resolve() != session.spec_path:
        return None
    session.collected = True
    from trustproof.pytest_plugin.items import SpecFile  # noqa: PLC0415 (only when asked)

    return SpecFile.from_parent(parent, path=file_path)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION, None)
    if state is not None:
        state.stop()


def _session(config: pytest.Config) -> PluginSession:
    state = config.stash.get(SESSION, None)
    if state is None:
        pytest.fail(
            "trustproof: no spec configured for this session\n"
            "    hint: pass --trustproof-spec trustproof.yaml, or set trustproof_spec in the ini",
            pytrace=False,
        )
    return state


@pytest.fixture(scope="session")
def trustproof_sandbox(request: pytest.FixtureRequest) -> LiveSandbox:
    """The running sandbox of the configured spec (started once per session)."""
    return _session(request.config).live()


@pytest.fixture(scope="session")
def trustproof_client(trustproof_sandbox: LiveSandbox) -> Callable[..., Client]:
    """``trustproof_client(name, token=True)``: a client calling services as that persona or
    workload (its certificate where it presents one, and a token bound to it)."""
    from trustproof.pytest_plugin.client import Client  # noqa: PLC0415

    def make(name: str, *, token: bool = True) -> Client:
        return Client(trustproof_sandbox, name, with_token=token)

    return make


@pytest.fixture(scope="session")
def trustproof_cert(
    trustproof_sandbox: LiveSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], CertFiles]:
    """``trustproof_cert(name)``: a fresh certificate for that identity, written as cert.pem,
    key.pem (0600) and bundle.pem into a new temporary directory (for curl, psql, requests)."""
    from trustproof.pytest_plugin.client import CertFiles  # noqa: PLC0415

    def make(name: str) -> CertFiles:
        svid = trustproof_sandbox.cert(name)
        return CertFiles.write(
            svid, trustproof_sandbox.bundle_pem(), tmp_path_factory.mktemp(f"cert-{name}")
        )

    return make


@pytest.fixture(scope="session")
def trustproof_token(trustproof_sandbox: LiveSandbox) -> Callable[..., str]:
    """``trustproof_token(name, audience, bound_to=None)``: a fresh access token; `bound_to` (a
    `CertFiles` or `Svid`) binds it to that certificate, as gateways require of workloads."""
    from trustproof.pytest_plugin.client import CertFiles  # noqa: PLC0415

    def make(name: str, audience: str, *, bound_to: CertFiles | Svid | None = None) -> str:
        svid = bound_to.svid if isinstance(bound_to, CertFiles) else bound_to
        return trustproof_sandbox.token(name, audience, bound_to=svid)

    return make
