"""The lifecycle scenarios against a service that validates tokens itself (`gateway: none`): the
PyJWT example, which reads the token service's keys from ``TRUSTPROOF_JWKS_FILE`` and reads it
again on SIGHUP, passes key rotation, certificate rotation, token expiry and revocation
propagation; its failing twin —
the same service declared ``reload: none`` (it is never told the files changed), accepting
tokens 5 s past ``exp`` and not asking the token service about revocations — fails each of them,
naming the evidence."""

from __future__ import annotations

import asyncio
import json
import shutil
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
    assert rotation.summary.startswith("inventory still refused the new signing key's token 3."), (
        rotation.summary
    )
    assert "HTTP 401" in rotation.summary
    assert "reload" in rotation.summary
    assert "unknown-kid" in " ".join(rotation.evidence) or "401" in " ".join(rotation.evidence)
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
