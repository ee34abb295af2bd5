"""The lifecycle scenarios against services that validate tokens themselves (`gateway: none`).

The PyJWT example reads the token service's keys from ``TRUSTPROOF_JWKS_FILE`` and again on
SIGHUP: it passes key rotation, certificate rotation, token expiry and revocation propagation; its
failing twin — declared ``reload: none`` (never told the files changed), accepting tokens 5 s past
``exp`` and not asking the token service about revocations — fails each, naming the evidence.

HAProxy terminates mTLS with ``crt {{ cert_key_file }}`` and checks tokens with ``jwt_verify``
against ``signing_key_current_file`` or ``signing_key_previous_file``: it passes key rotation and
token expiry; its twin, checking the current key only, refuses the tokens of the key just retired
and fails key rotation."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from trustproof.chaos import own
from trustproof.chaos.scenario import ScenarioEnv, ScenarioResult, mint, presentation, targets
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.trustfiles import JWKS_FILE, SIGNING_KEYS_FILE
from trustproof.sandbox.view import LiveView
from trustproof.suite.scenarios import run_scenarios

pytestmark = pytest.mark.integration
PYJWT_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pyjwt-mtls"
LIFECYCLE = (
    "lifecycle.revocation-propagation",
    "lifecycle.token-expiry",
    "lifecycle.key-rotation",
    "lifecycle.cert-rotation",
)


def copy_example(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """The example copied to `tmp_path`, each `old` replaced by `new` (exactly once) in its file."""
    target = tmp_path / PYJWT_EXAMPLE.name
    shutil.copytree(
        PYJWT_EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof")
    )
    for name, replacements in edits.items():
        path = target / name
        text = path.read_text()
        for old, new in replacements:
            assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
            text = text.replace(old, new)
        path.write_text(text)
    return target / "trustproof.yaml"


def lifecycle_on(spec: Path, run_dir: Path) -> tuple[dict[str, ScenarioResult], dict[str, object]]:
    """The three lifecycle scenarios' results, and what the key files said at the end."""

    async def main() -> tuple[dict[str, ScenarioResult], dict[str, object]]:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            results = await asyncio.wait_for(
                run_scenarios(sandbox, (), ids=(*LIFECYCLE, "authz.role-removed")), 120
            )
            directory = sandbox.rotators["inventory"].files.directory
            assert sandbox.fabric is not None
            files = {
                "jwks_kids": [
                    k["kid"] for k in json.loads((directory / JWKS_FILE).read_text())["keys"]
                ],
                "pem_keys": (directory / SIGNING_KEYS_FILE).read_text().count("BEGIN PUBLIC KEY"),
                "published": list(sandbox.fabric.keys.kids),
            }
            return {r.id: r for r in results}, files

    return asyncio.run(main())


def test_the_pyjwt_service_passes_key_rotation_expiry_and_revocation(tmp_path: Path) -> None:
    results, files = lifecycle_on(PYJWT_EXAMPLE / "trustproof.yaml", tmp_path / "run")
    verdicts = {sid: (r.verdict, r.summary) for sid, r in results.items()}
    assert verdicts.pop("authz.role-removed") == (
        "skip",
        "no service behind a gateway: no policy to change at run time",
    )  # it crashed (SandboxError) before
    assert {sid: v for sid, (v, _) in verdicts.items()} == dict.fromkeys(LIFECYCLE, "pass"), (
        verdicts
    )
    rotated = results["lifecycle.cert-rotation"]
    assert rotated.figures["rotations.inventory"] == 3
    assert rotated.figures["failed.inventory"] == 0
    assert rotated.figures["requests.inventory"] >= 3
    rotation = results["lifecycle.key-rotation"]
    assert "inventory accepted the new key's token" in rotation.summary
    assert rotation.figures["new_key_accepted_ms.inventory"] >= 0  # the budget is the verdict
    expiry = results["lifecycle.token-expiry"]
    assert expiry.figures["connections_opened.inventory"] == 1
    assert expiry.figures["requests_accepted.inventory"] >= 1
    assert expiry.figures["refused_after_exp_ms.inventory"] >= 0
    revocation = results["lifecycle.revocation-propagation"]
    assert revocation.figures["propagation_ms.inventory"] >= 0
    assert "inventory (introspection) refused the revoked token" in revocation.summary
    # the files the service reads say what the token service publishes (after the prune)
    assert files["jwks_kids"] == files["published"]
    assert files["pem_keys"] == len(files["published"])  # type: ignore[arg-type]


def test_a_service_that_never_reloads_keeps_refusing_the_new_key_and_fails(
    tmp_path: Path,
) -> None:
    spec = copy_example(
        tmp_path,
        {
            "trustproof.yaml": [("    reload: sighup ", "    reload: none   ")],
            "inventory.py": [
                ("    if not introspect(token):", "    if False:"),
                (
                    "            issuer=ISSUER,\n",
                    "            issuer=ISSUER,\n            leeway=5,\n",
                ),
            ],
        },
    )
    results, files = lifecycle_on(spec, tmp_path / "run")
    del results["authz.role-removed"]
    assert {sid: r.verdict for sid, r in results.items()} == dict.fromkeys(LIFECYCLE, "fail")
    stale = results["lifecycle.cert-rotation"]
    assert stale.summary.startswith("inventory still presented "), stale.summary
    assert "did not reload its certificate files" in stale.summary
    rotation = results["lifecycle.key-rotation"]
    assert rotation.summary.startswith("inventory still refused the new signing key's token "), (
        rotation.summary
    )
    assert "s after the rotation (HTTP 401" in rotation.summary
    assert "unknown-kid" in rotation.summary  # the service's own reason: a kid it does not know
    assert "did not pick up the rewritten key files" in rotation.summary
    # the files were rewritten all the same: the service just never read them again
    assert files["jwks_kids"] == files["published"]
    expiry = results["lifecycle.token-expiry"]
    assert expiry.summary == "inventory accepted the token more than 1 s after its exp"
    revocation = results["lifecycle.revocation-propagation"]
    assert revocation.summary.startswith("inventory still accepted the revoked token after 3")


def inventory_processes(directory: Path) -> set[int]:
    """Live processes running this copy's inventory.py (read from /proc)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = (proc / "cwd").resolve()
        except OSError:
            continue
        if b"inventory.py" in cmdline and cwd == directory.resolve():
            found.add(int(proc.name))
    return found


def test_restarts_for_changed_files_run_one_after_the_other(tmp_path: Path) -> None:
    """Two key rotations in a row ask a `reload: restart` service to restart twice at once: the
    second restart waits for the first, so one process runs at the end, with the new keys."""
    spec = copy_example(
        tmp_path, {"trustproof.yaml": [("    reload: sighup ", "    reload: restart")]}
    )

    async def main() -> tuple[int, int, set[int], str]:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            assert sandbox.fabric is not None
            first = sandbox.handles["inventory"].pid
            sandbox.fabric.keys.rotate()
            sandbox.fabric.keys.rotate()
            tasks = list(sandbox._background)
            assert len(tasks) == 2  # one restart per rewrite
            done, _ = await asyncio.wait(tasks, timeout=60)
            for task in done:
                task.result()  # a restart that failed fails the test
            last = sandbox.handles["inventory"].pid
            alive = inventory_processes(spec.parent)
            async with LiveView.open(sandbox) as view:
                env = ScenarioEnv(view)
                (target,) = targets(sandbox.spec, ["inventory"]).values()
                result, _, _ = await own.poll(
                    env, presentation(target, mint(env, target)), allowed=True, give_up_s=20
                )
            return first, last, alive, result.outcome

    first, last, alive, outcome = asyncio.run(main())
    assert last != first
    assert alive == {last}
    assert outcome == "allowed"  # a token of the newest key: the restarted process read its file


# -- HAProxy: mTLS with `crt {{ cert_key_file }}`, tokens with `jwt_verify` -----------------------

HAPROXY_SPEC = Path(__file__).resolve().parents[1] / "data" / "haproxy-jwt" / "trustproof.yaml"
HAPROXY_SCENARIOS = ("lifecycle.token-expiry", "lifecycle.key-rotation")


@pytest.fixture
def haproxy() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if found is None:
        pytest.skip("haproxy is not installed: apt-get install -y haproxy")
    return found


def scenarios_on(spec: Path, ids: tuple[str, ...]) -> dict[str, ScenarioResult]:
    # a short run directory: HAProxy's unix socket path (in the rendered config) is at most 97
    with tempfile.TemporaryDirectory(prefix="tp-", dir="/tmp") as short:

        async def main() -> list[ScenarioResult]:
            async with Sandbox.from_file(spec, run_dir=Path(short) / "run") as sandbox:
                return await asyncio.wait_for(run_scenarios(sandbox, (), ids=ids), 90)

        return {result.id: result for result in asyncio.run(main())}


def test_haproxy_verifying_tokens_with_the_current_and_previous_key_files_passes(
    haproxy: str,
) -> None:
    results = scenarios_on(HAPROXY_SPEC, HAPROXY_SCENARIOS)
    verdicts = {sid: (r.verdict, r.summary) for sid, r in results.items()}
    assert {sid: v for sid, (v, _) in verdicts.items()} == dict.fromkeys(
        HAPROXY_SCENARIOS, "pass"
    ), verdicts
    assert "retired key's during the overlap" in results["lifecycle.key-rotation"].summary


def test_haproxy_reading_only_the_current_key_refuses_tokens_in_flight_and_fails(
    haproxy: str, tmp_path: Path
) -> None:
    target = tmp_path / "haproxy-jwt"
    shutil.copytree(HAPROXY_SPEC.parent, target)
    config = target / "haproxy.cfg.j2"
    text = config.read_text()
    previous = (
        ' || { var(txn.bearer),jwt_verify(txn.alg,"{{ signing_key_previous_file }}") -m int 1 }'
    )
    assert text.count(previous) == 1
    config.write_text(text.replace(previous, ""))
    results = scenarios_on(target / "trustproof.yaml", HAPROXY_SCENARIOS)
    assert results["lifecycle.token-expiry"].verdict == "pass"
    rotation = results["lifecycle.key-rotation"]
    assert rotation.verdict == "fail"
    assert rotation.summary.startswith(
        "inventory: the retired key's token was refused during the overlap: HTTP 401"
    ), rotation.summary
