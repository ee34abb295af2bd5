"""The one error the datastores raise: the environment could not give the sandbox its database.

    TrustproofError                 (trustproof.errors)
    └── DatastoreError              PostgreSQL missing, would not start, or the user's SQL failed

A connection refused *by design* (no client certificate, wrong role, a table outside the grants)
is a probe result, never this error; this is for the sandbox failing to come up as specified.
"""

from __future__ import annotations

from trustproof.errors import TrustproofError
from trustproof.scrub import scrub

INSTALL_HINT = (
    "install it: apt-get install -y postgresql (make test/make demo do this when run as root)"
)


class DatastoreError(TrustproofError):
    """A datastore could not be prepared; the message says what was expected and what happened.

    `message` and `hint` are scrubbed: they may quote PostgreSQL's own messages or log lines.
    """

    exit_code = 3

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(scrub(message), scrub(hint))
