"""`trustproof.shard`: which shard runs what — a partition of the ids (every id in exactly one
shard), by a hash of the id that does not depend on the process, nor on the other ids; and
`--shard K/N` parsing (bad input is exit 2 with a clear message, before anything starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from trustproof.cli import cli
from trustproof.errors import UsageError
from trustproof.shard import (
    MAX_SHARDS,
    Shard,
    fingerprint,
    parse,
    select,
    shard_from_json,
    shard_of,
)
from trustproof.spec import load_spec
from trustproof.suite.runner import generate
from trustproof.suite.sharding import plan_fingerprint, shard_cases, shard_items

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
IDS = st.lists(st.text(max_size=40), unique=True, max_size=60)
TOTALS = st.integers(1, 12)


@given(IDS, TOTALS)
def test_the_shards_partition_the_ids(ids: list[str], n: int) -> None:
    shards = [select(ids, k, n) for k in range(1, n + 1)]
    assert sorted(i for shard in shards for i in shard) == sorted(ids)  # the union is all
    seen: Counter[str] = Counter(i for shard in shards for i in shard)
    assert all(count == 1 for count in seen.values())  # pairwise disjoint
    for k, shard in enumerate(shards, 1):
        assert shard == [i for i in ids if shard_of(i, n) == k]  # in the given order


@given(IDS, st.text(max_size=40), TOTALS)
def test_adding_an_id_moves_no_other(ids: list[str], new: str, n: int) -> None:
    """Stable as cases are added: by the id's hash, not its position."""
    grown = [new, *(i for i in ids if i != new)]
    for k in range(1, n + 1):
        assert [i for i in select(grown, k, n) if i != new] == [
            i for i in select(ids, k, n) if i != new
        ]


@given(st.text(max_size=40), TOTALS)
def test_one_shard_owns_each_id(item: str, n: int) -> None:
    owners = [k for k in range(1, n + 1) if Shard(k, n).owns(item)]
    assert owners == [shard_of(item, n)]


def test_the_split_is_the_same_in_every_process() -> None:
    """No Python `hash()` (salted per process): two interpreters with different hash seeds agree
    with this one, and with the figures pinned here (a changed hash would re-deal every CI)."""
    ids = [f"authz.matrix | svc{i} | caller{i % 7} | GET /r/{i}" for i in range(200)]
    here = [shard_of(i, 5) for i in ids]
    code = (
        "import json, sys; from trustproof.shard import shard_of; "
        "print(json.dumps([shard_of(i, 5) for i in json.load(sys.stdin)]))"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(ids),
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        assert json.loads(out) == here
    pinned = ("a", "b", "token.expired | orders | - | GET /orders")
    assert [shard_of(i, 3) for i in pinned] == [2, 2, 1]


def test_the_shards_are_balanced_on_the_shop() -> None:
    """Balanced within reason: on the shop's cases no shard is more than 15 % off the mean."""
    ids = [case.id for case in generate(load_spec(SHOP))]
    assert len(ids) > 500
    for n in (2, 3, 4, 8):
        sizes = [len(select(ids, k, n)) for k in range(1, n + 1)]
        mean = len(ids) / n
        assert all(abs(size - mean) <= 0.15 * mean for size in sizes), (n, sizes)


def test_the_suite_hook_runs_each_case_scenario_and_experiment_in_one_shard() -> None:
    spec = load_spec(SHOP)
    cases = generate(spec)
    scenario_ids = ["lifecycle.token-expiry", "chaos.cedar-error", "policy.live-vs-offline"]
    for n in (1, 2, 3):
        parts = [shard_cases(cases, Shard(k, n)) for k in range(1, n + 1)]
        assert sorted(c.id for part in parts for c in part) == sorted(c.id for c in cases)
        assert sum(len(part) for part in parts) == len(cases)
        picked = [shard_items(scenario_ids, scenario_ids, Shard(k, n)) for k in range(1, n + 1)]
        assert sorted(s for part in picked for s in part) == sorted(scenario_ids)
    assert shard_cases(cases, None) == cases


def test_the_plan_fingerprint_names_the_whole_plan() -> None:
    spec = load_spec(SHOP)
    cases = generate(spec)
    whole = plan_fingerprint(spec, cases)
    assert whole.startswith("sha256:")
    assert whole == plan_fingerprint(spec, list(cases))
    # another selection, fewer cases, other switches: another plan
    assert plan_fingerprint(spec, cases[1:]) != whole
    assert plan_fingerprint(spec, cases, select=["token.*"]) != whole
    assert plan_fingerprint(spec, cases, chaos=False) != whole
    assert plan_fingerprint(spec, cases, scenarios=False) != whole


def test_fingerprint_parts_cannot_collide_by_where_they_split() -> None:
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])
    assert fingerprint(["a\n1:b"]) != fingerprint(["a", "b"])


@pytest.mark.parametrize(
    ("text", "shard"),
    [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3)), ("07/10", Shard(7, 10))],
)
def test_parse_reads_k_of_n(text: str, shard: Shard) -> None:
    assert parse(text) == shard
    assert str(shard) == text.replace(" ", "").lstrip("0")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0/3", "K must be between 1 and 3"),
        ("4/3", "K must be between 1 and 3"),
        ("1/0", "at least one shard"),
        ("x", "not of the form K/N"),
        ("1/", "not of the form K/N"),
        ("-1/3", "not of the form K/N"),
        ("1.5/3", "not of the form K/N"),
        ("2", "not of the form K/N"),
        (f"1/{MAX_SHARDS + 1}", f"at most {MAX_SHARDS} shards"),
    ],
)
def test_parse_refuses_what_is_not_k_of_n(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as raised:
        parse(text)
    assert "--shard K/N" in raised.value.hint


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1/0"])
@pytest.mark.parametrize("command", ["run", "probe"])
def test_the_cli_refuses_a_bad_shard_with_exit_2(command: str, text: str, tmp_path: Path) -> None:
    args = [command, str(SHOP)] if command == "run" else [command]
    result = CliRunner().invoke(cli, [*args, "--shard", text, "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--shard'" in result.output
    assert "hint: write --shard K/N" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing started


def test_a_shard_as_json_holds_it() -> None:
    assert shard_from_json(None) is None
    assert shard_from_json({"index": 2, "total": 3}) == Shard(2, 3)
    for bad in ({"index": "2", "total": 3}, {"index": True, "total": 3}, [2, 3], {"index": 1}):
        with pytest.raises(UsageError, match="is not"):
            shard_from_json(bad)
    with pytest.raises(UsageError, match="between 1 and 3"):
        shard_from_json({"index": 4, "total": 3})


def test_probe_asks_the_running_sandbox_for_its_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`probe --shard 2/3` sends the shard to the controller, which hands it to the suite; a
    shard the controller cannot read is a usage error there too, before any case runs."""
    import asyncio  # noqa: PLC0415

    from test_report_merge import cut, full_run  # noqa: PLC0415

    import trustproof.cli.sandbox as sandbox_cli  # noqa: PLC0415
    from trustproof.results import write  # noqa: PLC0415

    results_file = write(cut(full_run(), 3)[1], tmp_path)
    sent: list[dict[str, object]] = []

    async def control_request(_socket: Path, _method: str, _path: str, body: dict[str, object],
                              timeout: float) -> dict[str, object]:  # fmt: skip
        sent.append(body)
        return {"results": str(results_file)}

    monkeypatch.setattr(sandbox_cli, "control_request", control_request)
    result = CliRunner().invoke(
        cli, ["probe", "--shard", "2/3", "--run-dir", str(tmp_path), "--report-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert sent[0]["shard"] == {"index": 2, "total": 3}
    CliRunner().invoke(cli, ["probe", "--run-dir", str(tmp_path), "--report-dir", str(tmp_path)])
    assert "shard" not in sent[1]

    async def refused() -> dict[str, object]:
        body = {"shard": {"index": 5, "total": 3}}
        return await sandbox_cli._probe_for_control(None, body)  # type: ignore[arg-type]

    reply = asyncio.run(refused())
    assert reply["exit_code"] == 2
    assert "K must be between 1 and 3" in str(reply["error"])


def test_the_controller_reads_the_shard_of_a_probe_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `_probe_for_control` hands the suite: the body's shard, or None without one (the
    regression: it once read the whole body as the shard, refusing every probe)."""
    import asyncio  # noqa: PLC0415

    import trustproof.cli.sandbox as sandbox_cli  # noqa: PLC0415

    given: list[Shard | None] = []

    async def suite_on(_sandbox: object, **options: object) -> tuple[object, Path]:
        shard = options["shard"]
        assert shard is None or isinstance(shard, Shard)
        given.append(shard)
        return full_run_ok(), Path("results.json")

    def full_run_ok() -> object:
        class _Ok:
            ok = True

        return _Ok()

    monkeypatch.setattr(sandbox_cli, "suite_on", suite_on)
    for body in ({}, {"shard": None}, {"shard": {"index": 1, "total": 2}}):
        reply = asyncio.run(sandbox_cli._probe_for_control(None, body))  # type: ignore[arg-type]
        assert reply == {"results": "results.json", "ok": True}
    assert given == [None, None, Shard(1, 2)]
