#!/usr/bin/env bash
# `make demo`: the main job on the bundled shop example: validate, policy test, then the suite,
# which writes results.json and the HTML, JUnit and Markdown reports.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=examples/shop/trustproof.yaml
BIN=.venv/bin

echo "== trustproof demo: the shop example ($SPEC)"
echo "   Everything below is real: a CA and token service, Cedar gateways, egress proxies,"
echo "   PostgreSQL with certificate auth and the three services, probed from outside."
echo "   The run writes results.json and the HTML, JUnit and Markdown reports, and prints their paths."
echo
echo "== 1. validate the spec"
"$BIN/trustproof" validate "$SPEC"
echo
echo "== 2. the Cedar policies against the expected access matrix, offline"
"$BIN/trustproof" policy test "$SPEC"
echo
echo "== 3. trustproof run: start the sandbox, prove every boundary, stop it"
"$BIN/trustproof" run "$SPEC" --run-dir .trustproof/demo-run
