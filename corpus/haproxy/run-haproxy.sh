#!/bin/sh
# Start the HAProxy this target ships, on the configuration the sandbox rendered from
# haproxy.cfg.j2 (certificate+key in one PEM: `cert_key_file`; the issuer's signing keys as PEM
# public keys, current and previous: what `jwt_verify` reads), in master-worker mode. The
# sandbox's SIGHUP (reload: sighup: after a certificate rotation, a CRL change, a signing-key
# rotation) becomes the master's SIGUSR2, HAProxy's seamless reload: new workers read the
# rewritten files while the old ones finish — no connection is refused meanwhile. A USR2 that
# arrives while the master is still reloading is lost, so a SIGHUP only marks a reload as due,
# and the loop sends the next USR2 once the previous reload forked its worker. Debian puts
# haproxy in /usr/sbin.
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
"$HAPROXY" -W -db -f "$TRUSTPROOF_CONFIG_DIR/haproxy.cfg" &
master=$!
due=0
trap 'due=1' HUP
trap 'kill -TERM "$master"; exit 0' TERM INT

workers() {
    cat /proc/"$master"/task/*/children 2>/dev/null
}

reload() {
    before=" $(workers) "
    kill -USR2 "$master"
    polls=0
    while [ "$polls" -lt 100 ]; do  # at most about 10 s
        for pid in $(workers); do
            case "$before" in *" $pid "*) ;; *) sleep 0.5; return ;; esac
        done
        sleep 0.1
        polls=$((polls + 1))
    done
}

while kill -0 "$master" 2>/dev/null; do
    if [ "$due" = 1 ]; then
        due=0
        reload
    else
        sleep 0.1
    fi
done
