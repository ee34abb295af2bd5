"""gunicorn terminating mutual TLS with the sandbox's files; the CRL is loaded by the
`ssl_context` hook (gunicorn has no setting for it). SIGHUP (`reload: sighup`) makes gunicorn
start new workers, which read the rotated certificate and CRL."""

import os
import ssl

bind = f"{os.environ['TRUSTPROOF_HOST']}:{os.environ['TRUSTPROOF_PORT']}"
workers = 1
worker_class = "gthread"
threads = 16
certfile = os.environ["TRUSTPROOF_CERT_FILE"]
keyfile = os.environ["TRUSTPROOF_KEY_FILE"]
ca_certs = os.environ["TRUSTPROOF_BUNDLE_FILE"]
cert_reqs = ssl.CERT_REQUIRED
loglevel = "warning"
accesslog = None


def ssl_context(config, default_ssl_context_factory):
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(os.environ["TRUSTPROOF_CRL_FILE"])
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context
