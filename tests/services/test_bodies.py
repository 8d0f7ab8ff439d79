"""Request bodies: Content-Encoding and the size limit after decompression (no database)."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib

import pytest

from webapp.services.apps.bodies import (
    BodyTooLarge,
    UndecodableBody,
    UnsupportedMediaType,
    read_body,
)

MIB = 1024 * 1024


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity "])
def test_an_uncompressed_body_is_returned_as_sent(encoding):
    assert read_body(b'{"events": []}', encoding, limit=100) == b'{"events": []}'


def test_an_uncompressed_body_over_the_limit_is_too_large():
    assert read_body(b"x" * 100, None, limit=100) == b"x" * 100
    with pytest.raises(BodyTooLarge) as raised:
        read_body(b"x" * 101, None, limit=100)
    assert raised.value.status_code == 413


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip", " gzip "])
def test_gzip_is_decompressed(encoding):
    body = os.urandom(5000)
    assert read_body(gzip.compress(body), encoding, limit=5000) == body


def test_the_limit_counts_decompressed_bytes():
    compressed = gzip.compress(b"a" * 10_001)
    assert len(compressed) < 100
    assert read_body(gzip.compress(b"a" * 10_000), "gzip", limit=10_000) == b"a" * 10_000
    with pytest.raises(BodyTooLarge, match="larger than 10000 bytes after decompression"):
        read_body(compressed, "gzip", limit=10_000)


def test_the_message_says_the_limit_in_mebibytes():
    with pytest.raises(BodyTooLarge, match="larger than 5 MiB after decompression"):
        read_body(gzip.compress(b"\0" * (5 * MIB + 1)), "gzip", limit=5 * MIB)


def test_a_gzip_bomb_never_inflates_past_the_limit_in_memory():
    # 256 MiB of zeros compress to about 256 KiB: built with a streaming compressor, so the
    # test itself never holds them either.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * MIB
    bomb = b"".join(compressor.compress(block) for _ in range(256)) + compressor.flush()
    assert len(bomb) < MIB
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            read_body(bomb, "gzip", limit=20 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MIB  # the limit and a step, not 256 MiB


def test_several_gzip_members_are_read_one_after_the_other():
    body = gzip.compress(b"first ") + gzip.compress(b"second")
    assert read_body(body, "gzip", limit=100) == b"first second"
    with pytest.raises(BodyTooLarge):
        read_body(body, "gzip", limit=11)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the gzip body is empty"),
        (b"not gzip at all", "not valid gzip"),
        (gzip.compress(b"x" * 1000)[:-12], "truncated"),
        (gzip.compress(b"ok") + b"trailing garbage", "not valid gzip"),
    ],
)
def test_a_broken_gzip_stream_is_undecodable(raw, message):
    with pytest.raises(UndecodableBody, match=message) as raised:
        read_body(raw, "gzip", limit=MIB)
    assert raised.value.status_code == 400


def test_a_corrupted_checksum_is_undecodable():
    compressed = bytearray(gzip.compress(b"hello world"))
    compressed[-8] ^= 0xFF  # the CRC-32 of the trailer
    with pytest.raises(UndecodableBody):
        read_body(bytes(compressed), "gzip", limit=MIB)


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br"])
def test_other_encodings_are_unsupported(encoding):
    with pytest.raises(UnsupportedMediaType, match="use gzip or none") as raised:
        read_body(b"x", encoding, limit=MIB)
    assert raised.value.status_code == 415
