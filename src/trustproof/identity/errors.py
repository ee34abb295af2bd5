"""The errors the identity package raises: misuse of the CA, never a failed verification.

A certificate that does not verify is a *result* (`trustproof.identity.verify.SvidCheck`), not an
exception. These are for callers that ask for something impossible (a name that cannot be a SPIFFE
ID, a leaf that would outlive its CA, a serial this CA never issued)::

    TrustproofError                 (trustproof.errors)
    └── IdentityError               also a ValueError: the arguments were wrong
        └── InvalidSpiffeId         text that is not a SPIFFE ID
"""

from __future__ import annotations

from trustproof.errors import TrustproofError


class IdentityError(TrustproofError, ValueError):
    """A request the certificate authority cannot honour; the message says why and what to do.

    The spec is validated before the CA is asked for anything, so reaching this is a bug in the
    caller: the command line reports it with the internal-error exit code.
    """

    exit_code = 70


class InvalidSpiffeId(IdentityError):
    """Text (or parts) that do not form a SPIFFE ID according to the SPIFFE-ID standard."""
