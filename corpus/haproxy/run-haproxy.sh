#!/bin/sh
# Start the HAProxy this target ships, in the foreground, on the configuration the sandbox
# rendered from haproxy.cfg.j2. Before that: the certificate and key in one PEM (what `crt`
# reads) and the issuer's signing key as a PEM public key (what `jwt_verify` reads), both in the
# rendered configuration's directory. Debian puts haproxy in /usr/sbin.
set -eu
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
dir=$TRUSTPROOF_CONFIG_DIR
umask 077
cat "$TRUSTPROOF_CERT_FILE" "$TRUSTPROOF_KEY_FILE" > "$dir/server.pem"
python issuer_key.py "$dir/issuer.pem"
exec "$HAPROXY" -db -f "$dir/haproxy.cfg"
