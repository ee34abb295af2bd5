"""The exceptions trustproof raises.

A denial is a *result*, never an exception: probes and gateways return outcomes. Exceptions are
for misconfiguration and bugs, and every one the tool defines descends from one root, which
carries a `message` and a `hint` (what to do about it)::

    TrustproofError                 anything trustproof raises on purpose; .message, .hint
    ├── SpecError                   the spec cannot be used (exit 2); carries every problem
    ├── UsageError                  the command cannot do what was asked (exit 2)
    │   └── NothingToRun            the selection matched no case; suite/command
    ├── ReportError                 results missing, unreadable or of an unknown version
    │                               (exit 2); results
    ├── SandboxError                the environment could not start or stop (exit 3)
    │   └── TooSlow                 a chaos experiment's short-lived certificate ended before it
    │                               could be shown (an ``error`` result); chaos/faults_ca
    ├── DatastoreError              a datastore could not start or be provisioned (exit 3);
    │                               datastores/errors
    ├── UpstreamError               a service behind a gateway did not answer (the gateway
    │                               answers 502); gateway/http1
    ├── RequestTooLarge             a request head or body over the gateway's limits (answered
    │                               400 or 413 as malformed, never forwarded); gateway/h1server
    ├── EgressError                 an egress proxy could not forward a call (it answers 502);
    │   │                           gateway/egress
    │   ├── CalleeMismatch          the server's SVID names someone else (also an aiohttp
    │   │                           ClientConnectionError)
    │   └── TokenUnavailable        the token service gave no token for the call
    ├── IdentityError               impossible request to the CA (also ValueError); identity/errors
    │   └── InvalidSpiffeId         text that is not a SPIFFE ID
    ├── BadValue                    a spec scalar that does not parse (also ValueError; becomes a
    │                               `Problem` of a SpecError); spec/values
    ├── BadMerge                    a YAML merge key whose value is not mappings (becomes a
    │                               `Problem`); spec/decode
    ├── FileRefusal                 a file the spec names cannot be read: missing, not regular,
    │                               outside the spec's directory, too large (becomes a `Problem`);
    │                               spec/files
    ├── TooManyRoutes               the route-overlap check would exceed its budget (becomes a
    │                               `Problem`); spec/routes
    ├── AuditUnavailable            the durable audit log cannot take records (gateways answer
    │                               503); audit
    ├── AuditKeyError               an audit key-encryption key missing, malformed or not the
    │                               log's, or an audit log that cannot be read; audit/crypto
    ├── JoseError                   a token part that does not decode (also ValueError; becomes a
    │                               validation reason, never reaches a caller); tokens/_jose
    ├── ContractError               a service's middleware cannot honour the contract as
    │                               configured (raised at its start-up); middleware/contract
    ├── DataError                   a test-data sample, rule or masking key that cannot be used
    │                               (exit 2); data/errors
    ├── SnapshotError               an environment compared by consistency.* cannot be read
    │                               (exit 3); consistency/pgsnapshot
    └── CaseFailed                  a generated case's verdict in pytest was not ``pass`` (shown
                                    as the item's failure); pytest_plugin/items

Third-party errors (YAML, cryptography, psycopg, ...) are translated at the boundary with
``raise ... from exc`` so that callers only ever need to catch `TrustproofError`.
Messages are scrubbed of secrets before they are shown (see `trustproof.scrub`).
`tests/unit/test_errors.py` checks that this tree lists every exception class of the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TrustproofError(Exception):
    """Root of every error trustproof raises on purpose: `message` says what went wrong,
    `hint` (possibly empty) what to do about it; `str()` shows both."""

    exit_code = 1

    def __init__(self, message: str = "", hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n    hint: {hint}" if hint else message)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located precisely enough for an editor to jump to it.

    `line` and `column` are 1-based; 0 means "the file as a whole".
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        """`FILE:LINE:COL: field.path: message`, then the hint on an indented line."""
        where = f"{self.file}:{self.line}:{self.column}"
        head = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{head}\n    hint: {self.hint}" if self.hint else head


class SpecError(TrustproofError):
    """The spec is unusable; `problems` lists every problem found, in file order."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path)))
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in the spec:\n" + self.render())
        self.hint = "fix each problem at the place it names; `trustproof validate` lists them"

    def render(self) -> str:
        return "\n".join(problem.render() for problem in self.problems)


class SandboxError(TrustproofError):
    """The sandbox could not start (or be found, or be stopped). Everything started is stopped."""

    exit_code = 3


class UsageError(TrustproofError):
    """The command cannot do what was asked (a selection that matches nothing, an option that
    makes no sense): exit code 2, like a bad spec, and nothing was run."""

    exit_code = 2


class ReportError(TrustproofError):
    """The results cannot be read or are not a results document this version understands
    (exit code 2)."""

    exit_code = 2


class EgressError(TrustproofError):
    """An egress proxy could not forward a call; the proxy answers its service 502 with the
    message (never a token)."""
