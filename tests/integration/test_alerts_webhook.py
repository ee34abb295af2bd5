"""Issue 16's "done when": a deliberately over-permissive policy raises an alert that a webhook
receiver on loopback gets, signed; the alert is in results.json and in the audit log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import json
import shutil
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from trustproof.alerts.sinks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from trustproof.audit.files import records
from trustproof.audit.keys import load_kek
from trustproof.results import Results, load
from trustproof.sandbox.controller import Sandbox
from trustproof.suite.command import suite_on

pytestmark = pytest.mark.integration

KEY = "alert-signing-key-for-the-test"


class Receiver(http.server.BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


def over_permissive_shop(tmp_path: Path, shop_spec_path: Path, port: int) -> Path:
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
    spec = shop / "trustproof.yaml"
    spec.write_text(
        spec.read_text()
        + "\nalerts:\n  sinks:\n"
        + f"    - {{kind: webhook, url: 'http://127.0.0.1:{port}/hook', secret_env: TP_ALERT_KEY,"
        + " retries: 1, timeout: 5s}\n"
        + "    - {kind: jsonl}\n"
    )
    return spec


def test_an_over_permissive_policy_raises_a_signed_webhook_alert(
    shop_spec_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TP_ALERT_KEY", KEY)
    Receiver.got = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spec = over_permissive_shop(tmp_path, shop_spec_path, server.server_address[1])

        async def main() -> Results:
            async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
                results, _ = await suite_on(sandbox, select=("authz.outside-matrix",))
                return results

        results = asyncio.run(main())
    finally:
        server.shutdown()
        server.server_close()

    over = [a for a in results.alerts if a.when == "over-permission"]
    assert [a.subject for a in over] == ["authz.outside-matrix | storefront | bob | POST /checkout"]
    assert over[0].severity == "critical"
    assert [a.when for a in load(tmp_path / "run").alerts] == [a.when for a in results.alerts]

    bodies = []
    for headers, body in Receiver.got:
        stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        good = hmac.new(KEY.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature, "sha256=" + good)
        wrong = hmac.new(b"another key", stamp.encode() + b"." + body, hashlib.sha256)
        assert signature != "sha256=" + wrong.hexdigest()  # the twin: another key does not fit
        bodies.append(json.loads(body))
    received = [b["alert"] for b in bodies if b["alert"]["when"] == "over-permission"]
    assert [a["subject"] for a in received] == [over[0].subject]

    lines = (tmp_path / "run" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == len(results.alerts)
    audited = [r for r in records(tmp_path / "run", load_kek().key) if r["kind"] == "alert"]
    assert [r["subject"] for r in audited if r["when"] == "over-permission"] == [over[0].subject]
