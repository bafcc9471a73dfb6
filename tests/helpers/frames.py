"""Reading the frame protocol out of sources, for the tests that hold the pages' scripts and
the server to iridium/live/protocol.py: which frames a Python source makes (dicts with
`"type": protocol.X`, or a literal, and calls of the protocol's frame builders), which a page's
script sends and handles, and the close codes the shared socket module names."""

import inspect
import re
from pathlib import Path

from iridium.live import protocol

ROOT = Path(__file__).resolve().parent.parent.parent
# The socket every page where answers stream uses: the close codes live there.
SOCKET_MODULE = (ROOT / "static" / "js" / "live-socket.js").read_text()

# `"type": "object"` and the like in tools' JSON schemas are not frames.
JSON_SCHEMA_TYPES = {"object", "string", "integer", "number", "boolean", "array", "null"}


def protocol_builders() -> dict[str, str]:
    """The protocol's functions that make a frame: name -> the frame's type."""
    builders = {}
    for name, function in inspect.getmembers(protocol, inspect.isfunction):
        if function.__module__ != protocol.__name__:
            continue
        made = re.search(r'\{"type":\s*([A-Z_]+)\b', inspect.getsource(function))
        if made:
            builders[name] = getattr(protocol, made.group(1))
    return builders


def frames_made_in(source: str, where: str = "") -> list[str]:
    """The types of the frames a Python source makes."""
    builders = protocol_builders()
    types = []
    for name in re.findall(r'"type":\s*(?:protocol\.)?([A-Z][A-Z_]*)\b', source):
        assert hasattr(protocol, name), f"{where}: frame type {name} is not in the protocol"
        types.append(getattr(protocol, name))
    for literal in re.findall(r'"type":\s*"([a-z_]+)"', source):
        if literal not in JSON_SCHEMA_TYPES:
            types.append(literal)
    for function in re.findall(r"\bprotocol\.([a-z_]+)\(", source):
        if function in builders:
            types.append(builders[function])
    return types


def frames_sent_by_script(script: str) -> set[str]:
    return set(re.findall(r'\btype:\s*"([^"]+)"', script))


def frames_handled_by_script(script: str) -> set[str]:
    return set(re.findall(r'\bcase\s+"([^"]+)"\s*:', script))


def close_codes_of(script: str) -> dict[str, int]:
    return {name: int(code) for name, code in re.findall(r"\bconst (CLOSE_\w+) = (\d+);", script)}
