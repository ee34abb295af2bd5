"""tasks: a Flask service on gunicorn behind trustproof's gateway. One line makes it honour the
contract: ``app.wsgi_app = TrustproofMiddleware(app.wsgi_app)`` (gunicorn passes the raw
request-target as RAW_URI, which the gateway's proof signs)."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from trustproof.middleware.wsgi import TrustproofMiddleware, caller_of

app = Flask(__name__)
app.wsgi_app = TrustproofMiddleware(app.wsgi_app)  # type: ignore[method-assign]
TASKS: list[dict[str, Any]] = [{"id": 1, "title": "ship it", "by": "bob"}]


@app.get("/tasks")
def list_tasks() -> dict[str, Any]:
    return {"tasks": TASKS, "for": caller_of(request.environ).principal}


@app.post("/tasks")
def add_task() -> tuple[dict[str, Any], int]:
    task = {"id": len(TASKS) + 1, "title": "", "by": caller_of(request.environ).principal}
    TASKS.append(task)
    return task, 201
