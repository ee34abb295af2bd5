"""A leaf certificate's template before it is signed (`LeafTemplate`): its validity and names
checked, with a clear `IdentityError` for each mistake. `CertificateAuthority.template` and
`issue` start here."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta

from trustproof.identity.errors import IdentityError
from trustproof.identity.material import IpAddress, LeafTemplate
from trustproof.identity.spiffe import SpiffeId


def leaf_template(
    spiffe_id: SpiffeId,
    name: str,
    ttl: timedelta,
    *,
    now: datetime,
    backdate: timedelta,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> LeafTemplate:
    """The leaf for `spiffe_id` (CN `name`), valid from ``now - backdate`` (or `not_before`) to
    ``now + ttl`` (or `not_after`), with its DNS and IP SANs checked: a clear `IdentityError`
    for a naive time, a non-positive ttl, an end before the start, a bad name or address."""
    for given in (not_before, not_after):
        if given is not None and given.tzinfo is None:
            raise IdentityError(
                f"expected timezone-aware not_before/not_after for {name!r}, got {given}\n"
                "    hint: derive them from clock.now(), which is UTC"
            )
    start = not_before if not_before is not None else now - backdate
    end = not_after if not_after is not None else now + ttl
    if not_after is None and ttl <= timedelta(0):
        raise IdentityError(f"expected a positive ttl for {name!r}, got {ttl}")
    if end <= start:
        raise IdentityError(
            f"the certificate for {name!r} would end ({end.isoformat()}) before it starts "
            f"({start.isoformat()})\n    hint: not_after must be later than not_before"
        )
    return LeafTemplate(
        common_name=name,
        uris=(str(spiffe_id),),
        not_before=start,
        not_after=end,
        dns=tuple(_check_dns(d) for d in dns),
        ips=tuple(_parse_ip(ip) for ip in ips),
    )


def _check_dns(name: str) -> str:
    if not name or not name.isascii() or any(c.isspace() or c in "/@:" for c in name):
        raise IdentityError(
            f"bad DNS name {name!r} for a certificate\n"
            "    hint: use an ASCII host name such as 'localhost' or 'orders.shop.test'"
        )
    return name


def _parse_ip(text: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise IdentityError(
            f"bad IP address {text!r} for a certificate\n"
            "    hint: use a literal address such as '127.0.0.1' or '::1'"
        ) from exc
