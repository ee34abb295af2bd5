"""`DataError`: a sample, a rule or a key that cannot be used (exit 2: fix the input)."""

from __future__ import annotations

from trustproof.errors import TrustproofError


class DataError(TrustproofError):
    """Test data that cannot be scrubbed as asked: a missing key, a sample that does not read, a
    rule naming a column the sample lacks. The message never quotes a value of the data."""

    exit_code = 2
