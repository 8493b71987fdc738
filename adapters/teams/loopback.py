"""Whether a URL, a listening host or a request's socket is on this machine only: what the
unauthenticated local-testing mode and plain-HTTP file links are held to."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

#: A loopback URL written the one way every URL parser reads alike: lower-case scheme, a literal
#: host (no user info, no percent-encoding, no backslash, no spaces), an optional port, a plain
#: path. Anything else is refused rather than interpreted, since the checker and the HTTP
#: client that then connects must agree on the host.
_LOOPBACK_URL = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>localhost|\[::1\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3})"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<path>/[A-Za-z0-9._~/-]*)?"
)


def is_loopback(url: object) -> bool:
    """Whether `url` can only lead to this machine: a serviceUrl the bot may reply to without
    a token check, or a file link it may fetch over plain HTTP. Checked as the text is, and
    again as both urllib and yarl (the HTTP client's parser) read it."""
    if not isinstance(url, str):
        return False
    match = _LOOPBACK_URL.fullmatch(url)
    if match is None:
        return False
    host = match["host"].strip("[]")
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:  # also refuses 127.0.0.01, 300.0.0.1
                return False
        except ValueError:
            return False
    port = int(match["port"]) if match["port"] else None
    if port is not None and port > 65535:
        return False
    default_port = 443 if match["scheme"] == "https" else 80
    try:
        as_urllib = urlsplit(url)
        as_client = URL(url)
        read_by_urllib = (as_urllib.hostname, as_urllib.port, as_urllib.username)
        read_by_client = (as_client.host, as_client.port, as_client.user)
    except ValueError:
        return False
    return read_by_urllib == (host, port, None) and read_by_client == (
        host,
        port or default_port,
        None,
    )


def is_loopback_host(host: str) -> bool:
    """Whether a server listening on `host` (as given to `serve --host`) takes connections
    from this machine only; all interfaces ("0.0.0.0", "::", "") and names other than
    localhost do not count."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def arrived_on_loopback(request: web.Request) -> bool:
    """Whether the request came in on a loopback address of this machine: the socket's own
    address, not what the request claims, so an app served somewhere else than the host it
    was built for still takes nothing unauthenticated from elsewhere."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or not sockname:
        return False
    try:
        address = ipaddress.ip_address(str(sockname[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's IPv4 client
    return address.is_loopback
