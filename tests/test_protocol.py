"""iridium/live/protocol.py and static/js/stream-page.js speak one protocol: a frame type added
on one side only, or a close code changed on one side only, fails here.

The page is read with regular expressions: the frames it sends are its `type: "..."` object
literals, the frames it handles are the `case "...":` labels of its switch over frame types.
The server's frames are found in the Python sources of the apps that have sockets: dicts
with `"type": protocol.X` (or a bare constant, or a literal), and calls of the protocol's
frame builders (`protocol.ready(...)`, ...).
"""

import asyncio
import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chat.consumers import ChatConsumer
from codegen.consumers import CreationConsumer
from iridium.live import protocol
from support.consumers import TicketConsumer
from tests.helpers.frames import (
    SOCKET_MODULE,
    close_codes_of,
    frames_handled_by_script,
    frames_made_in,
    frames_sent_by_script,
    protocol_builders,
)

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "static" / "js" / "stream-page.js").read_text()
# Where frames to the page are made: the live package and the apps with sockets (the AI
# service and the demo provider speak OpenAI's wire, whose "type"s are not frames).
SERVER_SOURCES = sorted(
    path
    for folder in ("iridium/live", "chat", "support", "codegen")
    for path in (ROOT / folder).rglob("*.py")
    if "migrations" not in path.parts and path != ROOT / "iridium/live/protocol.py"
)
CONSUMERS = (ChatConsumer, TicketConsumer, CreationConsumer)

# Frames the server sends that the page leaves alone on purpose: none today. Name one here,
# with the reason, before the page may ignore it.
IGNORED_BY_THE_PAGE: frozenset[str] = frozenset()


def frames_sent_by_the_page() -> set[str]:
    return frames_sent_by_script(PAGE)


def frames_handled_by_the_page() -> set[str]:
    return frames_handled_by_script(PAGE)


def close_codes_of_the_page() -> dict[str, int]:
    """The close codes of the page's socket (static/js/live-socket.js, which the page uses)."""
    assert re.search(r'from "\./live-socket\.js"', PAGE), "the page uses the shared socket"
    return close_codes_of(SOCKET_MODULE)


def frames_sent_by_the_server() -> dict[str, set[str]]:
    """Frame type -> the source files that send it."""
    sent: dict[str, set[str]] = {}
    for path in SERVER_SOURCES:
        where = str(path.relative_to(ROOT))
        for frame_type in frames_made_in(path.read_text(), where):
            sent.setdefault(frame_type, set()).add(where)
    return sent


def test_the_parsers_find_what_they_look_for():
    """The regular expressions still match the page and the sources as they are written."""
    assert {"send", "stop"} <= frames_sent_by_the_page()
    assert {"ready", "delta", "answer_finished"} <= frames_handled_by_the_page()
    assert set(close_codes_of_the_page()) == {"CLOSE_UNAUTHENTICATED", "CLOSE_FORBIDDEN"}
    assert protocol_builders()["ready"] == protocol.READY
    sent = frames_sent_by_the_server()
    assert "iridium/live/writer.py" in sent[protocol.ANSWER_STARTED]
    assert "iridium/live/consumers.py" in sent[protocol.READY]


def test_the_page_sends_exactly_the_frames_from_the_page():
    assert frames_sent_by_the_page() == set(protocol.FROM_PAGE)


def test_every_frame_from_the_page_has_a_handler_on_the_server():
    # Stop and feedback are the base consumer's; the rest are the apps' handlers.
    handled = {protocol.STOP, protocol.FEEDBACK} | {
        t for consumer in CONSUMERS for t in consumer.handlers
    }
    assert handled == set(protocol.FROM_PAGE)


def test_the_page_handles_only_frames_to_the_page():
    assert frames_handled_by_the_page() <= set(protocol.TO_PAGE)


def test_the_server_sends_only_frames_to_the_page_and_all_of_them():
    sent = frames_sent_by_the_server()
    unknown = {frame_type: sent[frame_type] for frame_type in set(sent) - set(protocol.TO_PAGE)}
    assert unknown == {}, "sent, but not a frame to the page in the protocol"
    assert set(protocol.TO_PAGE) <= set(sent), "named in the protocol but never sent"


def test_the_page_handles_every_frame_the_server_sends():
    sent = set(frames_sent_by_the_server())
    assert sent >= IGNORED_BY_THE_PAGE
    assert sent - IGNORED_BY_THE_PAGE <= frames_handled_by_the_page()


def test_the_page_and_the_protocol_have_the_same_close_codes():
    codes = {name: value for name, value in vars(protocol).items() if name.startswith("CLOSE_")}
    assert close_codes_of_the_page() == codes
    for name in codes:  # and the page's socket acts on each
        assert re.search(rf"event\.code === {name}\b", SOCKET_MODULE), name


def test_the_page_sends_the_replay_session_with_the_frames_that_start_an_answer():
    starts = re.search(r"const STARTS_AN_ANSWER = \[([^\]]*)\];", PAGE)
    field = re.search(r'const REPLAY_SESSION_FIELD = "([^"]+)";', PAGE)
    assert starts and field, "stream-page.js names the frames and the field"
    assert set(re.findall(r'"([a-z_]+)"', starts.group(1))) == set(protocol.STARTS_AN_ANSWER)
    assert field.group(1) == protocol.REPLAY_SESSION_FIELD
    assert set(protocol.STARTS_AN_ANSWER) <= set(protocol.FROM_PAGE)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text() | st.integers(), inner),
    max_leaves=20,
)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_a_frame_is_sent_as_the_json_the_standard_library_would_read(frame):
    """orjson writes the frames; what it refuses (a lone surrogate, an integer beyond 64 bits)
    goes through the standard library. Either way the page reads what was sent (keys that are
    numbers become strings, as json.dumps makes them)."""
    from iridium.live.consumers import FrameConsumer

    text = asyncio.run(FrameConsumer.encode_json(frame))
    assert json.loads(text) == json.loads(json.dumps(frame))
