#!/usr/bin/env bash
# `make demo`: the main job on the bundled shop example, as far as trustproof goes today.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=examples/shop/trustproof.yaml
BIN=.venv/bin

echo "== trustproof demo: the shop example ($SPEC)"
echo "   Built today: spec validation, the offline policy check, and the real sandbox (CA, token"
echo "   service, Cedar gateways, egress proxies, PostgreSQL, the three services). The generated"
echo "   zero-trust suite and the reports arrive with the next issues; nothing below is simulated."
echo
echo "== 1. validate the spec"
"$BIN/trustproof" validate "$SPEC"
echo
echo "== 2. the expected access matrix (the oracle)"
"$BIN/trustproof" plan "$SPEC"
echo
echo "== 3. the Cedar policies against the matrix, offline"
"$BIN/trustproof" policy test "$SPEC"
echo
echo "== 4. the sandbox for real: a few calls across its boundaries"
"$BIN/python" scripts/demo.py
