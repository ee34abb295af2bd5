"""The shop run as two shards (`trustproof run --shard K/2`, each with its own sandbox, one after
the other: they share the shop's fixed ports) and merged (`trustproof report merge`) gives the
same cases, scenarios, verdicts and exit code as the full unsharded run — on a copy of the shop
whose policy lets a visitor check out, so that one shard finds a real violation and the merged
verdict must fail like the full run's.

A slice of the catalogue keeps it short (CI budget): what is outside the matrix, some token and
TLS probes on every boundary, and one scenario; the chaos experiments are left out
(`--no-chaos`): their split is the same hash as the scenarios' (unit tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SELECT = (  # refusals at the gateways: no answer depends on a loaded upstream's timing
    "authz.outside-matrix",
    "token.alg-none",
    "token.expired",
    "tls.untrusted-ca",
    "tls.no-client-cert",
    "authz.role-removed",  # the scenario
)
VIOLATION = "authz.outside-matrix | storefront | bob | POST /checkout"


def trustproof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in document["cases"]} | {
        s["id"]: s["verdict"] for s in document["scenarios"]
    }


def test_two_shards_merged_give_the_full_runs_cases_and_verdict(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(
        shop_spec_path.parent, shop, ignore=shutil.ignore_patterns("__pycache__", ".trustproof")
    )
    policy = shop / "policies" / "shop.cedar"
    policy.write_text(
        policy.read_text() + '\n@id("oops-visitors-buy")\npermit (principal in '
        'Role::"visitor", action == Action::"POST", '
        'resource == Route::"storefront /checkout");\n'
    )
    common = [str(shop / "trustproof.yaml"), "--no-chaos"]
    for pattern in SELECT:
        common += ["--select", pattern]

    full = trustproof("run", *common, "--run-dir", "full", "--report-dir", "full-r", cwd=tmp_path)
    assert full.returncode == 1, full.stdout + full.stderr
    whole = json.loads((tmp_path / "full" / "results.json").read_text())
    assert "shard" not in whole
    assert {c["id"] for c in whole["cases"] if c["verdict"] != "pass"} == {VIOLATION}
    assert [s["id"] for s in whole["scenarios"]] == ["authz.role-removed"]

    shards = []
    for k in (1, 2):
        ran = trustproof(
            "run", *common, "--shard", f"{k}/2", "--run-dir", f"s{k}", "--report-dir", f"s{k}-r",
            cwd=tmp_path,
        )  # fmt: skip
        document = json.loads((tmp_path / f"s{k}" / "results.json").read_text())
        assert document["shard"] == {"index": k, "total": 2}
        assert document["fingerprint"] == whole["fingerprint"]  # one plan
        holds_violation = any(c["id"] == VIOLATION for c in document["cases"])
        assert ran.returncode == (1 if holds_violation else 0), ran.stdout + ran.stderr
        assert document["cases"]  # both shards have work
        shards.append(document)
    assert not set(_verdicts(shards[0])) & set(_verdicts(shards[1]))

    merged = trustproof(
        "report", "merge", "s1", str(tmp_path / "s2" / "results.json"), "-o", "merged",
        cwd=tmp_path,
    )  # fmt: skip
    assert merged.returncode == full.returncode == 1, merged.stdout + merged.stderr
    assert "merged 2 shards" in merged.stdout
    result = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert _verdicts(result) == _verdicts(whole)
    assert len(result["cases"]) == len(whole["cases"])
    assert result["summary"] == whole["summary"]
    assert [p["index"] for p in result["merged_from"]] == [1, 2]
    for name in ("report.junit.xml", "report.md", "report.html", "codequality.json"):
        assert (tmp_path / "merged" / name).is_file(), name
    assert VIOLATION.replace("|", "\\|") in (tmp_path / "merged" / "report.md").read_text()

    # one shard alone is refused, naming the missing one
    alone = trustproof("report", "merge", "s1", "-o", "alone", cwd=tmp_path)
    assert alone.returncode == 2
    assert "shard 2/2 missing" in alone.stderr
    assert not (tmp_path / "alone").exists()
