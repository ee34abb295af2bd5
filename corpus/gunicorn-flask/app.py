"""The reports service: Flask under gunicorn, terminating mutual TLS (gunicorn.conf.py) and
checking its own tokens (`tokencheck`, PyJWT). Written the way a team writes a Flask service;
nothing from trustproof.

Its authorization layer answers ``401`` for every refusal (a bad token, a certificate of another
trust domain and a caller without the permission alike), as many Flask apps do: correct, and
trustproof must not call it a wrong stage for a server it did not write. ``/admin/...`` is for
administrators (`guard`, by the route Flask matched); every other view says who may call it
(`permitted`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import tokencheck
from flask import Flask, Response, jsonify, request

View = Callable[..., Response]

NAME = os.environ["TRUSTPROOF_SERVICE"]
ADMINS = {"dana"}

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
    """Every request: an authenticated caller; the admin area (the routes under /admin/, as
    Flask matched them): administrators only. The other views say who may call them."""
    try:
        who = caller()
    except tokencheck.Refused as refusal:
        return refuse(refusal.status, refusal.reason)
    rule = request.url_rule.rule if request.url_rule is not None else ""
    if rule.startswith("/admin/") and who not in ADMINS:
        return refuse(401, "administrators only")
    request.environ["reports.caller"] = who
    return None


def permitted(*callers: str) -> Callable[[View], View]:
    """A view only these callers may call (401 for anyone else)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Response:
            if request.environ["reports.caller"] not in callers:
                return refuse(401, "not permitted")
            return view(*args, **kwargs)

        return checked

    return decorate


def served(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify({**body, "caller": request.environ["reports.caller"]})
    response.status_code = status
    response.headers["X-Served-By"] = NAME
    return response


@app.get("/reports")
@permitted("erin", "dana")
def list_reports() -> Response:
    return served({"reports": []})


@app.get("/reports/<rid>")
@permitted("erin", "frank")
def read_report(rid: str) -> Response:
    return served({"report": rid})


@app.post("/reports")
@permitted("erin")
def add_report() -> Response:
    return served({"added": True}, 201)


@app.get("/admin/users")
def users() -> Response:  # the admin area: `guard` lets administrators only in
    return served({"users": sorted(ADMINS)})
