"""notes: a FastAPI service behind trustproof's gateway. One line makes it honour the contract:
``app.add_middleware(TrustproofMiddleware)`` (verify the gateway's proof, expose the caller, mark
answers X-Served-By). Run by trustproof with its address in TRUSTPROOF_HOST/TRUSTPROOF_PORT."""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from trustproof.middleware.asgi import TrustproofMiddleware, caller_of

app = FastAPI()
app.add_middleware(TrustproofMiddleware)
NOTES: dict[int, dict[str, Any]] = {1: {"id": 1, "text": "hello", "by": "bob"}}


@app.get("/notes")
def list_notes(request: Request) -> dict[str, Any]:
    return {"notes": list(NOTES.values()), "for": caller_of(request.scope).principal}


@app.get("/notes/{note_id}")
def get_note(note_id: int) -> dict[str, Any]:
    if note_id not in NOTES:
        raise HTTPException(404, "no such note")
    return NOTES[note_id]


@app.post("/notes", status_code=201)
def add_note(request: Request) -> dict[str, Any]:
    note = {"id": len(NOTES) + 1, "text": "", "by": caller_of(request.scope).principal}
    NOTES[note["id"]] = note
    return note


if __name__ == "__main__":
    uvicorn.run(
        app,
        host=os.environ["TRUSTPROOF_HOST"],
        port=int(os.environ["TRUSTPROOF_PORT"]),
        log_level="warning",
    )
