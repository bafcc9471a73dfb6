"""Refresh docs/screenshots/: the chat, support ticket and generate pages, light and dark,
desktop (1280x800) and phone (390x844).

    .venv/bin/python scripts/screenshots.py

It runs tests/browser/screenshots.py (the browser tests' real server, demo provider and
Chromium, on the test database of the configured DATABASE_URL, SQLite by default), which checks
each page before taking its picture, then packs the PNGs tighter (zlib level 9).
"""

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunks(data: bytes):
    position = len(PNG_SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        yield kind, data[position + 8 : position + 8 + length]
        position += 12 + length


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def repack(path: Path) -> None:
    """The same image, its pixel data compressed at zlib's highest level, in one IDAT chunk."""
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG")
    parts = list(chunks(data))
    pixels = zlib.decompress(b"".join(body for kind, body in parts if kind == b"IDAT"))
    packed = [PNG_SIGNATURE]
    for kind, body in parts:
        if kind == b"IDAT":
            if pixels is not None:
                packed.append(chunk(b"IDAT", zlib.compress(pixels, 9)))
                pixels = None
        elif kind in (b"IHDR", b"PLTE", b"IEND"):  # nothing else is needed to show it
            packed.append(chunk(kind, body))
    smaller = b"".join(packed)
    if len(smaller) < len(data):
        path.write_bytes(smaller)


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for old in FOLDER.glob("*.png"):
        old.unlink()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command.append("tests/browser/screenshots.py")
    env = {**os.environ, "IRIDIUM_SCREENSHOTS": str(FOLDER)}
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode:
        return result.returncode
    for path in sorted(FOLDER.glob("*.png")):
        repack(path)
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
