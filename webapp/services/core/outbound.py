"""Outbound HTTP to URLs that admins configure (provider health checks, API endpoints),
guarded against server-side request forgery.

Whoever holds an admin session can set these URLs, and the server requests them, so a URL
must not turn the console into a port scanner of its own network:

- http(s) only, no credentials in the URL (``user:pass@host``), port 80 or 443 (a port
  scan needs other ports): ``PROVIDER_URL_PORTS`` lists more ports to allow, and with
  ``ALLOW_PRIVATE_PROVIDER_URLS=1`` any port is fine for a host whose addresses are all
  loopback or private (self-hosted models listen on 8000, 11434, …);
- the host is resolved and *every* address it resolves to must be allowed: loopback,
  private, shared (100.64/10), link-local, multicast, reserved (IPv6 site-local fec0::/10
  included, which Python 3.11 counts as global) and unspecified addresses are refused,
  also written as IPv4-mapped/6to4/NAT64 IPv6 or in the decimal, octal and hex forms the
  resolver accepts (``2130706433`` is 127.0.0.1). Cloud metadata endpoints
  (169.254.169.254, fd00:ec2::254, metadata.google.internal, …) are refused always;
  ``ALLOW_PRIVATE_PROVIDER_URLS=1`` allows loopback and private addresses, for models
  hosted on one's own network;
- the check happens when a URL is saved (a ``400`` naming the field) *and* each time it is
  requested, since DNS answers change; the request then connects to the very address that
  was checked (the ``Host`` header and TLS SNI/certificate check keep the name), so a DNS
  answer that changes between check and connect ("rebinding") cannot reach another host;
- redirects are never followed, proxies from the environment are not used, the body is
  not read, and one deadline bounds the whole exchange;
- what is kept and shown of a failure is a generic class ("connection refused", "timed
  out", "TLS error", "HTTP 503"), never the remote side's text.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2000
USER_AGENT = "aipm-health-check"
# Always refused, with or without ALLOW_PRIVATE_PROVIDER_URLS: instance metadata services
# hand out cloud credentials.
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = frozenset({80, 443})
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")

# The failure classes a check may record; anything else read back is shown generically.
NOT_HTTP = "not an http(s) URL"
URL_NOT_ALLOWED = "URL not allowed"
ADDRESS_NOT_ALLOWED = "address not allowed"
HOST_NOT_FOUND = "host not found"
CONNECTION_REFUSED = "connection refused"
TIMED_OUT = "timed out"
TLS_ERROR = "TLS error"
CONNECTION_FAILED = "connection failed"
INVALID_ANSWER = "invalid HTTP answer"
CHECK_FAILED = "check failed"
ERROR_CLASSES = frozenset(
    {
        NOT_HTTP,
        URL_NOT_ALLOWED,
        ADDRESS_NOT_ALLOWED,
        HOST_NOT_FOUND,
        CONNECTION_REFUSED,
        TIMED_OUT,
        TLS_ERROR,
        CONNECTION_FAILED,
        INVALID_ANSWER,
        CHECK_FAILED,
    }
)
HTTP_STATUS_ERROR = re.compile(r"^HTTP [1-5]\d\d( \(redirect not followed\))?$")


class OutboundRefused(Exception):
    """The URL may not be requested. ``error`` is the generic class recorded for a check,
    ``problem`` the sentence a form or the API shows next to the field."""

    def __init__(self, error: str, problem: str) -> None:
        super().__init__(problem)
        self.error = error
        self.problem = problem


class OutboundFailed(Exception):
    """The request was allowed but did not get an answer; ``error`` is its generic class."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, IDNA-encoded, no brackets, no trailing dot
    port: int
    path: str  # path and query, at least "/"


def generic_error(error: str | None) -> str | None:
    """A stored failure text as one of the generic classes (older rows kept the remote
    side's text; it is not shown)."""
    if error is None:
        return None
    if error in ERROR_CLASSES or HTTP_STATUS_ERROR.match(error):
        return error
    if error.startswith("timed out") or "timed out" in error:
        return TIMED_OUT
    return CHECK_FAILED


def parse_url(url: str) -> Target:
    """The parts of an http(s) URL that may be requested, or OutboundRefused."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(
            URL_NOT_ALLOWED, f"must be a URL of at most {MAX_URL_LENGTH} characters"
        )
    if CONTROL_OR_SPACE.search(url):
        raise OutboundRefused(URL_NOT_ALLOWED, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused(URL_NOT_ALLOWED, "must be a valid http(s) URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundRefused(NOT_HTTP, "must be an http(s) URL")
    if "@" in parts.netloc:
        raise OutboundRefused(URL_NOT_ALLOWED, "must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundRefused(URL_NOT_ALLOWED, "must name a host")
    if port == 0:
        raise OutboundRefused(URL_NOT_ALLOWED, "must not use port 0")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host.lower()
    except UnicodeError:
        raise OutboundRefused(URL_NOT_ALLOWED, "must name a valid host") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def address_problem(address: IPAddress, allow_private: bool) -> str | None:
    """Why ``address`` may not be requested (a sentence), or None when it may."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_problem(embedded, allow_private)
    private = (
        "must not point at a loopback or private address "
        "(ALLOW_PRIVATE_PROVIDER_URLS=1 allows them for self-hosted models)"
    )
    if address.is_loopback:  # before is_reserved: ::1 lies in the reserved ::/8
        return None if allow_private else private
    if (
        address in METADATA_ADDRESSES
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    ):
        return "must not point at a link-local, multicast, reserved or cloud metadata address"
    if address.is_private or not address.is_global:
        return None if allow_private else private
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _host_problem(host: str, allow_private: bool) -> str | None:
    if host in METADATA_HOSTS:
        return "must not point at a cloud metadata service"
    if (host == "localhost" or host.endswith(".localhost")) and not allow_private:
        return (
            "must not point at a loopback or private address "
            "(ALLOW_PRIVATE_PROVIDER_URLS=1 allows them for self-hosted models)"
        )
    return None


def _port_refused(extra_ports: frozenset[int], allow_private: bool) -> OutboundRefused:
    ports = ", ".join(str(port) for port in sorted(DEFAULT_PORTS | extra_ports))
    hint = " or a loopback/private host" if allow_private else ""
    return OutboundRefused(
        URL_NOT_ALLOWED,
        f"must use port {ports}{hint} (PROVIDER_URL_PORTS allows more ports)",
    )


def resolve(
    target: Target, allow_private: bool, extra_ports: frozenset[int] = frozenset()
) -> list[IPAddress]:
    """Every address the host resolves to, each one checked (OutboundRefused if any is not
    allowed, or if the port is not allowed for them); OutboundFailed(HOST_NOT_FOUND) when
    it does not resolve."""
    problem = _host_problem(target.host, allow_private)
    if problem:
        raise OutboundRefused(ADDRESS_NOT_ALLOWED, problem)
    port_allowed = target.port in DEFAULT_PORTS or target.port in extra_ports
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        if not port_allowed and not allow_private:
            raise _port_refused(extra_ports, allow_private) from None  # wherever it points
        raise OutboundFailed(HOST_NOT_FOUND) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        problem = address_problem(address, allow_private)
        if problem:
            raise OutboundRefused(ADDRESS_NOT_ALLOWED, problem)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundFailed(HOST_NOT_FOUND)
    # Any port only for one's own network: every address loopback or private.
    if not port_allowed and any(address_problem(a, False) is None for a in addresses):
        raise _port_refused(extra_ports, allow_private)
    return addresses


def url_problem(
    url: str, allow_private: bool, extra_ports: frozenset[int] = frozenset()
) -> str | None:
    """The save-time check: why ``url`` may not be saved, or None. A host that does not
    resolve now is accepted (it may only resolve inside the network the checks run in);
    the check-time resolution judges it again every time."""
    try:
        resolve(parse_url(url), allow_private, extra_ports)
    except OutboundRefused as refused:
        return refused.problem
    except OutboundFailed:
        return None
    return None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address checked beforehand; the Host header keeps the name."""

    def __init__(self, target: Target, addresses: list[IPAddress], timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = addresses

    def _open_socket(self) -> socket.socket:
        error: OSError | None = None
        for address in self._addresses:
            # A socket of its own rather than create_connection(), which would resolve
            # again: the address connected to is exactly the one checked.
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect((str(address), self.port))
                return sock
            except OSError as failure:
                sock.close()
                error = failure
        assert error is not None
        raise error

    def connect(self) -> None:
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def __init__(self, target: Target, addresses: list[IPAddress], timeout: float) -> None:
        super().__init__(target, addresses, timeout)
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        # SNI and the certificate check use the URL's host name, not the address.
        self.sock = self._tls.wrap_socket(self._open_socket(), server_hostname=self.host)


def get_status(
    url: str,
    timeout_seconds: float,
    allow_private: bool,
    extra_ports: frozenset[int] = frozenset(),
) -> tuple[int, int]:
    """GET ``url`` once under the rules above: (status code, milliseconds until the status
    line and headers arrived). Redirects are answers like any other: never followed.
    Raises OutboundRefused or OutboundFailed (each with a generic ``error``)."""
    target = parse_url(url)
    started = time.perf_counter()
    addresses = resolve(target, allow_private, extra_ports)
    remaining = max(0.001, timeout_seconds - (time.perf_counter() - started))
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = cls(target, addresses, remaining)
    timed_out = threading.Event()

    def abort() -> None:
        # One deadline for the whole exchange: a server trickling its headers byte by
        # byte would otherwise reset the per-operation socket timeout forever.
        timed_out.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(remaining, abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(
            "GET",
            target.path,
            headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"},
        )
        response = connection.getresponse()
        status = response.status
    except TimeoutError:
        raise OutboundFailed(TIMED_OUT) from None
    except ConnectionRefusedError:
        raise OutboundFailed(TIMED_OUT if timed_out.is_set() else CONNECTION_REFUSED) from None
    except (ssl.SSLError, ssl.CertificateError):
        raise OutboundFailed(TIMED_OUT if timed_out.is_set() else TLS_ERROR) from None
    except (http.client.HTTPException, OSError, ValueError) as error:
        if timed_out.is_set():
            raise OutboundFailed(TIMED_OUT) from None
        if isinstance(error, http.client.HTTPException) and not isinstance(
            error, http.client.RemoteDisconnected
        ):
            raise OutboundFailed(INVALID_ANSWER) from None
        raise OutboundFailed(CONNECTION_FAILED) from None
    finally:
        watchdog.cancel()
        connection.close()
    if timed_out.is_set():
        raise OutboundFailed(TIMED_OUT)
    return status, int((time.perf_counter() - started) * 1000)
