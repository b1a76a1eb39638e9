"""image_preparations: sizes read from inline images, and codex's resize rule (core/images.py).

The expected sizes are what the real codex 0.169.0 reported for black PNGs of these sizes
(one turn per size on a catalog model, original detail, and on a model it does not know,
high detail); the matrix fixture matrix_settings replays two of each live.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from codex_rpc_analytics.core.images import (
    HIGH_DETAIL,
    ORIGINAL_DETAIL,
    data_url_size,
    image_size,
    prepared_size,
)

ORIGINAL = [((1, 1), (1, 1)), ((3000, 1000), (3000, 1000)), ((600, 4000), (600, 4000)),
            ((2048, 2048), (2048, 2048)), ((5000, 5000), (3200, 3200)),
            ((1500, 700), (1500, 700)), ((100, 5000), (100, 5000)),
            ((4000, 3000), (3669, 2752)), ((3201, 3201), (3200, 3200)),
            ((10000, 1100), (6000, 660)), ((6000, 2000), (5471, 1823)),
            ((3300, 3200), (3232, 3134)), ((7000, 7000), (3200, 3200)),
            ((4097, 2500), (4090, 2496))]
HIGH = [((4000, 3000), (1824, 1368)), ((3201, 3201), (1600, 1600)),
        ((10000, 1100), (2048, 225)), ((6000, 2000), (2048, 683)),
        ((3300, 3200), (1600, 1551)), ((7000, 7000), (1600, 1600)),
        ((4097, 2500), (2044, 1248))]


@pytest.mark.parametrize(("source", "prepared"), ORIGINAL)
def test_original_detail_sizes_as_codex_prepared_them(source: tuple[int, int],
                                                      prepared: tuple[int, int]) -> None:
    assert prepared_size(*source, ORIGINAL_DETAIL) == prepared


@pytest.mark.parametrize(("source", "prepared"), HIGH)
def test_high_detail_sizes_as_codex_prepared_them(source: tuple[int, int],
                                                  prepared: tuple[int, int]) -> None:
    assert prepared_size(*source, HIGH_DETAIL) == prepared


def _png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header
            + struct.pack(">I", zlib.crc32(b"IHDR" + header)))


def test_sizes_of_each_image_format() -> None:
    assert image_size(_png(640, 480)) == (640, 480)
    assert image_size(b"GIF89a" + struct.pack("<HH", 32, 16) + b"\x00" * 8) == (32, 16)
    jpeg = (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
            + b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 300, 200) + b"\x00" * 10)
    assert image_size(jpeg) == (200, 300)
    vp8x = b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + b"\x00" * 8 + (99).to_bytes(3, "little") \
        + (49).to_bytes(3, "little")
    assert image_size(vp8x) == (100, 50)
    assert image_size(b"not an image") is None


def test_only_inline_images_have_a_size() -> None:
    url = "data:image/png;base64," + base64.b64encode(_png(7, 9)).decode()
    assert data_url_size(url) == (7, 9)
    assert data_url_size("https://example.invalid/cat.png") is None
    assert data_url_size("data:image/png;base64,!!!") is None
    assert data_url_size("data:text/plain,hello") is None
