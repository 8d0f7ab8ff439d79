"""Client addresses as the unit that per-address limits and audit aggregation count.

An IPv4 address is one client. An IPv6 client usually holds a whole /64 (SLAAC, privacy
addresses, a prefix delegated to one customer) and can hop between its 2^64 addresses at
will, so counting each address separately would give it a fresh budget per request:
IPv6 addresses count by their /64. IPv4-mapped IPv6 (``::ffff:192.0.2.1``) counts as the
IPv4 address it is.
"""

from __future__ import annotations

import ipaddress

IPV6_CLIENT_PREFIX = 64


def client_key(address: object) -> str:
    """``192.0.2.1`` → ``192.0.2.1``; ``2001:db8:1:2:a:b:c:d`` → ``2001:db8:1:2::/64``;
    anything unparsable is returned as text (``unknown`` for none)."""
    if address is None or address == "":
        return "unknown"
    text = str(address)
    try:
        parsed = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)
