"""``image_preparations``: how codex sized each image a user sent before the model saw it.

codex 0.169.0 reports, per image input of a turn (``turn/start``, accepted ``turn/steer``, a
queued prompt), the image's size and the size it was prepared to. For images sent inline
(``data:`` URLs) both follow from the bytes on the wire: the source size is in the image's
header (PNG, JPEG, GIF, WebP), and the prepared size is codex's resize rule, found by sending
the real binary images of many sizes (docs/conformance.md):

1. a longest side above the model's limit is scaled down to it (rounded);
2. if the image then spans more 32-pixel patches than the model's budget, it is scaled by
   ``sqrt(32² · budget / (w · h))``, shrunk further so that both sides fall on whole patches,
   and truncated.

Models that take images at original detail (every 0.169.0 catalog model) allow 6000 pixels a
side and 10,000 patches; others (codex's fallback model info) "high" detail, 2048 and 2,500.
Images codex reads from disk (``localImage``) or a URL are not on the wire: no entry.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

import msgspec

PATCH = 32
_HEADER_CHARS = 262_144  # base64 characters decoded to find the size (a JPEG's EXIF first)


class ImageBudget(msgspec.Struct, frozen=True):
    detail: str
    max_side: int
    max_patches: int


ORIGINAL_DETAIL = ImageBudget("original", 6000, 10_000)
HIGH_DETAIL = ImageBudget("high", 2048, 2_500)


class ImagePreparation(msgspec.Struct, frozen=True):
    """One entry of ``image_preparations`` (wire order)."""

    message_role: str
    item_id: str | None
    effective_detail: str
    source_width: int
    source_height: int
    prepared_width: int
    prepared_height: int


def prepared_size(width: int, height: int, budget: ImageBudget) -> tuple[int, int]:
    longest = max(width, height)
    if longest > budget.max_side:
        scale = budget.max_side / longest
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if math.ceil(width / PATCH) * math.ceil(height / PATCH) <= budget.max_patches:
        return width, height
    scale = math.sqrt(PATCH * PATCH * budget.max_patches / (width * height))
    across, down = width * scale / PATCH, height * scale / PATCH
    scale *= min(math.floor(across) / across, math.floor(down) / down)
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def data_url_size(url: str) -> tuple[int, int] | None:
    if not url.startswith("data:"):
        return None
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    chunk = payload[:_HEADER_CHARS]
    chunk = chunk[: len(chunk) - len(chunk) % 4]
    try:
        data = base64.b64decode(chunk, validate=False)
    except (binascii.Error, ValueError):
        return None
    return image_size(data)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, JPEG, GIF or WebP file."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return _positive(width, height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return _positive(width, height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


_JPEG_FRAMES = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            offset += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        if marker in _JPEG_FRAMES and offset + 9 <= len(data):
            height, width = struct.unpack(">HH", data[offset + 5:offset + 9])
            return _positive(width, height)
        offset += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _positive(width, height)
    if kind == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None
