"""Reading a request body an application sent: ``Content-Encoding`` and a size limit.

Shared by the JSON usage endpoint (5 MiB) and the OTLP endpoint (20 MiB). The limit is on
the body *after* decompression, and decompression stops as soon as it is passed, so a small
gzip bomb never grows past the limit in memory.
"""

from __future__ import annotations

import zlib

from webapp.services.core.errors import DomainError

# wbits for zlib: 16 + MAX_WBITS reads a gzip header and trailer (RFC 1952), checking its CRC.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_IDENTITY = frozenset({"", "identity"})
_GZIP = frozenset({"gzip", "x-gzip"})
_STEP = 1024 * 1024  # bytes decompressed per call


class BodyTooLarge(DomainError):
    """The body, decompressed, is larger than the endpoint accepts."""

    status_code = 413


class UnsupportedMediaType(DomainError):
    """A ``Content-Type`` or ``Content-Encoding`` the endpoint does not read (HTTP says 415
    for both)."""

    status_code = 415


class UndecodableBody(DomainError):
    """The body cannot be read at all: a broken gzip stream, bytes that are not the message."""

    status_code = 400


def read_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body as the application meant it: decompressed, and at most ``limit`` bytes.

    Raises ``BodyTooLarge`` past the limit, ``UnsupportedMediaType`` for an encoding other
    than gzip or identity, ``UndecodableBody`` for a stream that is not valid gzip.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in _IDENTITY:
        if len(raw) > limit:
            raise BodyTooLarge(_too_large(limit))
        return raw
    if encoding in _GZIP:
        return _gunzip(raw, limit)
    raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported: use gzip or none")


def _gunzip(raw: bytes, limit: int) -> bytes:
    if not raw:
        raise UndecodableBody("the gzip body is empty")
    chunks: list[bytes] = []
    produced = 0
    data = raw
    # A gzip file may hold several members one after the other (gzip.decompress reads them
    # all); each member needs a fresh decompressor.
    while data:
        decompressor = zlib.decompressobj(wbits=_GZIP_WBITS)
        while True:
            # Small steps, never more than one byte past what is still allowed (enough to
            # know the limit was crossed): memory holds the limit, not what a bomb expands to.
            step = min(_STEP, limit - produced + 1)
            try:
                chunk = decompressor.decompress(data, step)
            except zlib.error as error:
                raise UndecodableBody(f"the body is not valid gzip ({error})") from None
            produced += len(chunk)
            if produced > limit:
                raise BodyTooLarge(_too_large(limit))
            chunks.append(chunk)
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                break
            if not data and len(chunk) < step:
                # All input consumed and the output was not cut short: the stream just ends.
                raise UndecodableBody("the gzip body is truncated")
        data = decompressor.unused_data
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"the body is larger than {_size(limit)} after decompression"


def _size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    if mib >= 1 and mib == int(mib):
        return f"{int(mib)} MiB"
    return f"{limit} bytes"
