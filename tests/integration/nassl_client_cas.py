"""Read the CA names a TLS server advertises in its CertificateRequest with nassl (sslyze's
OpenSSL binding), as an independent reader to check `trustproof.sandbox.tlsscan` against.

Run by the Python of ``.venv-sslyze`` (see ``sslyze_mozilla.py``), never imported by the suite:

    .venv-sslyze/bin/python tests/integration/nassl_client_cas.py HOST:PORT

Loopback addresses only. Prints a JSON list of the names (empty when none were asked for).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys

from nassl.ssl_client import (
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)


def main(argv: list[str]) -> int:
    host, _, port = argv[1].rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:  # the network rule: loopback only
        print(f"refusing to connect to {host}: loopback addresses only", file=sys.stderr)
        return 2
    sock = socket.create_connection((host, int(port)), timeout=10)
    client = SslClient(
        underlying_socket=sock,
        ssl_version=OpenSslVersionEnum.TLSV1_2,
        ssl_verify=OpenSslVerifyEnum.NONE,
    )
    names: list[str] = []
    try:
        client.do_handshake()
    except ClientCertificateRequested as requested:
        names = list(requested._ca_list)
    finally:
        sock.close()
    print(json.dumps(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
