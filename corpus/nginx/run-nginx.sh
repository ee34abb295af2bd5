#!/bin/sh
# Start the nginx this example ships, in the foreground, on the configuration the sandbox rendered
# from nginx.conf.j2 (commands are not templated; the environment says where it went).
# Everything nginx writes (pid, temporary files) stays in that directory; its errors go to stderr,
# which is the service's log. Debian puts nginx in /usr/sbin, often not on a user's PATH.
set -eu
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
exec "$NGINX" -e stderr -p "$TRUSTPROOF_CONFIG_DIR" -c "$TRUSTPROOF_CONFIG_DIR/nginx.conf" \
    -g 'daemon off;'
