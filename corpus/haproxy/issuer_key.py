"""Write the token issuer's current signing key as a PEM public key, for HAProxy's
`jwt_verify` (HAProxy 2.6 verifies with one key file, read when it starts).

The issuer is ``TRUSTPROOF_TOKEN_URL`` without ``/token``; its JWKS is fetched over mutual TLS
(this service's certificate, trusting the bundle). The first key of the JWKS is the one the
issuer signs with; a key rotation restarts HAProxy (`reload: restart`), which runs this again.
Usage: python issuer_key.py OUT.pem
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request

import jwt
from cryptography.hazmat.primitives import serialization


def main() -> None:
    env = os.environ
    issuer = env["TRUSTPROOF_TOKEN_URL"].removesuffix("/token")
    context = ssl.create_default_context(cafile=env["TRUSTPROOF_BUNDLE_FILE"])
    context.load_cert_chain(env["TRUSTPROOF_CERT_FILE"], env["TRUSTPROOF_KEY_FILE"])
    with urllib.request.urlopen(  # noqa: S310 (https URL from the sandbox)
        f"{issuer}/jwks.json", context=context, timeout=10
    ) as response:
        keys = json.load(response)["keys"]
    key = jwt.PyJWK(keys[0]).key
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(sys.argv[1], "wb") as out:
        out.write(pem)


if __name__ == "__main__":
    main()
