#!/usr/bin/env bash
# Create or reuse .venv with the pinned dependencies, and make sure the Debian packages trustproof
# needs are present (installed with apt-get when running as root; otherwise the exact command to
# run is printed and the script fails). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
LOCK=requirements.lock
STAMP="$VENV/.trustproof-installed"

# Debian packages, each with a command that proves it is usable. Later capabilities add theirs here.
declare -A NEEDS=(
  [python3-venv]="$PYTHON -c 'import ensurepip, venv'"
  [postgresql]="compgen -G '/usr/lib/postgresql/*/bin/initdb' && id postgres"
  [iproute2]="command -v ss"
  [nftables]="command -v nft || test -x /usr/sbin/nft"
  [nginx]="command -v nginx || test -x /usr/sbin/nginx"
  [haproxy]="command -v haproxy || test -x /usr/sbin/haproxy"
  [chromium]="command -v chromium"
  # libfaketime: the chaos experiments skew a service process's clock (chaos.clock-skew)
  [faketime]="compgen -G '/usr/lib/*/faketime/libfaketime.so.1'"
  # image: services and their tests: Podman's Docker-compatible service with runc (crun fails on
  # hybrid cgroup layouts); the test image is built from Debian's own Python (no registry).
  [podman]="podman --version"
  [runc]="runc --version"
  [python3-minimal]="test -x /usr/bin/python3 && command -v ldd"
  # the gateway's Expect: 100-continue integration test drives a real curl
  [curl]="command -v curl"
)

missing=()
for pkg in "${!NEEDS[@]}"; do
  if ! eval "${NEEDS[$pkg]}" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    # trustproof runs its own PostgreSQL per sandbox: keep Debian from creating and starting a
    # system cluster on port 5432 when the package is installed.
    mkdir -p /etc/postgresql-common
    conf=/etc/postgresql-common/createcluster.conf
    if ! grep -qs '^create_main_cluster *= *false' "$conf"; then
      echo 'create_main_cluster = false' >> "$conf"
    fi
    # Debian also starts a freshly installed nginx on port 80 (and haproxy, with its default
    # configuration), and enables them at boot; trustproof runs them itself where a spec (or the
    # corpus) says so, on the spec's port. A policy-rc.d that says 101
    # ("action forbidden") keeps the package scripts from starting it; one already there (as in
    # container images) is left as it is.
    installing_nginx="" policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ " ${missing[*]} " == *" nginx "* || " ${missing[*]} " == *" haproxy "* ]]; then
      installing_nginx=1
      if [ ! -e "$policy" ]; then
        made_policy=1
        trap 'rm -f "$policy"' EXIT  # also if the install fails
        printf '#!/bin/sh\n# trustproof bootstrap: installing packages; start nothing\nexit 101\n' \
          > "$policy"
        chmod 755 "$policy"
      fi
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    if [ -n "$made_policy" ]; then
      rm -f "$policy"
      trap - EXIT
    fi
    if [ -n "$installing_nginx" ]; then
      # Whatever a pre-existing policy allowed: stop the system nginx and haproxy, and keep them
      # off at boot.
      for daemon in nginx haproxy; do
        [[ " ${missing[*]} " == *" $daemon "* ]] || continue
        service "$daemon" stop >/dev/null 2>&1 || true
        if [ -d /run/systemd/system ]; then
          systemctl disable --quiet "$daemon" >/dev/null 2>&1 || true
        fi
      done
    fi
  else
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: trustproof needs Python >= 3.11; $PYTHON is $("$PYTHON" -V 2>&1)" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  rm -f "$STAMP"  # a stamp left from a removed virtualenv says nothing
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the lock or the project metadata changed since the last install.
want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "bootstrap: installing pinned dependencies from $LOCK"
  log="$VENV/pip-install.log"
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check -r "$LOCK" &&
         "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps \
           --no-build-isolation -e .; } >"$log" 2>&1; then
    grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -40 >&2
    echo "bootstrap: pip failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$STAMP"
fi

# sslyze, which the TLS-profile integration test runs as a library, pins cryptography<47 while
# trustproof needs a newer one: it gets a virtualenv of its own, pinned by its own lock, and
# reinstalled only when that lock changed.
SSLYZE_VENV=${SSLYZE_VENV:-.venv-sslyze}
SSLYZE_LOCK=requirements-sslyze.lock
SSLYZE_STAMP="$SSLYZE_VENV/.trustproof-installed"
if [ ! -x "$SSLYZE_VENV/bin/python" ]; then
  echo "bootstrap: creating $SSLYZE_VENV"
  rm -f "$SSLYZE_STAMP"  # a stamp left from a removed virtualenv says nothing
  "$PYTHON" -m venv "$SSLYZE_VENV"
fi
want=$(sha256sum < "$SSLYZE_LOCK" | cut -d' ' -f1)
if [ ! -f "$SSLYZE_STAMP" ] || [ "$(cat "$SSLYZE_STAMP")" != "$want" ]; then
  echo "bootstrap: installing pinned sslyze from $SSLYZE_LOCK"
  log="$SSLYZE_VENV/pip-install.log"
  if ! "$SSLYZE_VENV/bin/python" -m pip install --disable-pip-version-check \
         -r "$SSLYZE_LOCK" >"$log" 2>&1; then
    grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -40 >&2
    echo "bootstrap: pip failed for sslyze (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$SSLYZE_STAMP"
fi
