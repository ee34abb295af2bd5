#!/usr/bin/env bash
# `make demo`: the main job on the bundled shop example, as far as trustproof goes today.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=examples/shop/trustproof.yaml
BIN=.venv/bin

echo "== trustproof demo: the shop example ($SPEC)"
echo "   Today trustproof validates the spec and expands the expected access matrix."
echo "   Not yet built: the sandbox (CA, token service, gateways, PostgreSQL), the probes and the"
echo "   reports. Those arrive with the next issues; nothing below is simulated."
echo
"$BIN/trustproof" validate "$SPEC"
echo
"$BIN/trustproof" plan "$SPEC"
