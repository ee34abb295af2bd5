"""The reports service: Flask under gunicorn, terminating mutual TLS (gunicorn.conf.py) and
checking its own tokens (`tokencheck`, PyJWT). Written the way a team writes a Flask service;
nothing from trustproof.

Its authorization layer answers ``401`` for every refusal (a bad token, a certificate of another
trust domain and a caller without the permission alike), as many Flask apps do: correct, and
trustproof must not call it a wrong stage for a server it did not write. ``/admin/...`` is for
administrators; every other route is checked against `PERMISSIONS`, by the route Flask matched.
"""

from __future__ import annotations

import os
from typing import Any

import tokencheck
from flask import Flask, Response, jsonify, request

NAME = os.environ["TRUSTPROOF_SERVICE"]
ADMINS = {"dana"}
# caller -> routes it may call (Flask's rule syntax)
PERMISSIONS: dict[str, set[str]] = {
    "erin": {"GET /reports", "GET /reports/<rid>", "POST /reports"},
    "frank": {"GET /reports/<rid>"},
    "dana": {"GET /reports"},
}

app = Flask(__name__)
app.url_map.strict_slashes = False


def refuse(status: int, reason: str) -> Response:
    response = jsonify({"error": reason})
    response.status_code = status
    return response


def caller() -> str:
    """The authenticated caller's name: the token checked against the connection's certificate."""
    sock = request.environ.get("gunicorn.socket")
    der = sock.getpeercert(binary_form=True) if hasattr(sock, "getpeercert") else None
    token = tokencheck.bearer(request.headers.get("Authorization"))
    claims = tokencheck.validate(token, der)
    return tokencheck.name_of(claims["sub"])


@app.before_request
def guard() -> Response | None:
    try:
        who = caller()
    except tokencheck.Refused as refusal:
        return refuse(refusal.status, refusal.reason)
    rule = request.url_rule.rule if request.url_rule is not None else None
    if rule is None:
        return None  # Flask answers 404 (or 405) itself
    if rule.startswith("/admin/"):
        if who not in ADMINS:
            return refuse(401, "administrators only")
    elif f"{request.method} {rule}" not in PERMISSIONS.get(who, set()):
        return refuse(401, "not permitted")
    request.environ["reports.caller"] = who
    return None


def served(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify({**body, "caller": request.environ["reports.caller"]})
    response.status_code = status
    response.headers["X-Served-By"] = NAME
    return response


@app.get("/reports")
def list_reports() -> Response:
    return served({"reports": []})


@app.get("/reports/<rid>")
def read_report(rid: str) -> Response:
    return served({"report": rid})


@app.post("/reports")
def add_report() -> Response:
    return served({"added": True}, 201)


@app.get("/admin/users")
def users() -> Response:
    return served({"users": sorted(PERMISSIONS)})
