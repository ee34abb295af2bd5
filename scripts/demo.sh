#!/usr/bin/env bash
# `make demo`: the main job on the bundled shop example, as far as trustproof goes today.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=examples/shop/trustproof.yaml
BIN=.venv/bin

echo "== trustproof demo: the shop example ($SPEC)"
echo "   Everything below is real: a CA and token service, Cedar gateways, egress proxies,"
echo "   PostgreSQL with certificate auth and the three services, probed from outside."
echo "   Not built yet: the HTML/JUnit/Markdown reports (results are written as JSON)."
echo
echo "== 1. validate the spec"
"$BIN/trustproof" validate "$SPEC"
echo
echo "== 2. the Cedar policies against the expected access matrix, offline"
"$BIN/trustproof" policy test "$SPEC"
echo
echo "== 3. trustproof run: start the sandbox, prove every boundary, stop it"
"$BIN/trustproof" run "$SPEC" --run-dir .trustproof/demo-run
