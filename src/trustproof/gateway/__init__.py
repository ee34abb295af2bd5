"""The gateway in front of every service: the TLS server, the verification pipeline, the path
canonicaliser, the gateway proof, the upstream client and the egress proxies."""
