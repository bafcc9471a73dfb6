"""The frames between a page and the socket of its object (a conversation, a ticket, a
creation; and the home page's public demo): their types, fields and error codes, and the
builders of the frames to the page, in one place. static/js/stream-page.js and
static/js/public-demo.js speak the same protocol, over static/js/live-socket.js (which holds the
close codes); tests/test_protocol.py and tests/test_public_demo.py hold them to each other.

The socket's URL names its object, so no frame carries the object's id.

From the page:
    send {content, client_id}   a message (chat, support)
    stop                        stop the answer being written
    regenerate                  a new answer to the last question (chat)
    retry                       answer again where the last answer failed
    edit {message_id, content, client_id}   the person's earlier question, edited (chat): it
                                and everything after it are replaced by it and a new answer
    human                       ask for a person (support)
    feedback {message_id, rating, comment?}   thumbs "up" or "down" on a finished answer, with
                                an optional comment (the person the answer was for; again to
                                change it)

Frames that start an answer (send, regenerate, retry, edit) carry `replay_session_id`, the browser's
PostHog session id, when PostHog runs in the page: the answer's AI calls send it as
`$session_id` (iridium.ai.replay, which also says what a valid one is; others are ignored).

To the page:
    ready {in_progress}                      first frame; the answer being written, if any
    user_message {message, html, title?, replaces?}   a person's message, rendered;
                                             `replaces`: the id of the question it is an
                                             edit of (it and what followed are replaced)
    answer_started {message_id, html}        an answer begins (its empty message, rendered)
    delta {message_id, offset, text}         more text; offset = length of the text before it
    snapshot {message_id, text}              the whole text so far (every second)
    tool {message_id, name, ok, html}        the assistant used a tool (its note, rendered)
    answer_finished {message_id, message, html}   the answer ended (complete, stopped, failed)
    refused {message_id, question_id, code, message, text, client_id, title?, restored?,
             edited_id?, more_url?}          refused before it began (limit, budget, switch);
                                             `title`: the object's title once it is cleaned up;
                                             `restored`: the messages it had replaced, rendered,
                                             back in place; `edited_id`: the question whose
                                             edit was refused (its text is `text`);
                                             `more_url`: the plans page, when a limit of the
                                             person's plan refused it
                                             (the public demo: `signup_url`, where
                                             to sign up)
    notice {code, message}                   something the page should say (handed over, ...)
    feedback_saved {message_id, rating, comment}   the person's feedback on an answer is kept
    error {code, message, text?}             a frame that was refused; `text` gives back what
                                             the person typed
"""

import json

import orjson

from iridium import ai
from iridium.infra.errors import DomainError
from iridium.infra.text import TextRejected, check_text

# Close codes (4000-4999 are the application's own).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403

# Frames from the page.
SEND = "send"
STOP = "stop"
REGENERATE = "regenerate"
RETRY = "retry"
HUMAN = "human"
FEEDBACK = "feedback"
EDIT = "edit"
FROM_PAGE = (SEND, STOP, REGENERATE, RETRY, HUMAN, FEEDBACK, EDIT)
STARTS_AN_ANSWER = (SEND, REGENERATE, RETRY, EDIT)
REPLAY_SESSION_FIELD = "replay_session_id"

# Frames to the page.
READY = "ready"
USER_MESSAGE = "user_message"
ANSWER_STARTED = "answer_started"
DELTA = "delta"
SNAPSHOT = "snapshot"
TOOL = "tool"
ANSWER_FINISHED = "answer_finished"
REFUSED = "refused"
NOTICE = "notice"
FEEDBACK_SAVED = "feedback_saved"
ERROR = "error"
TO_PAGE = (
    READY, USER_MESSAGE, ANSWER_STARTED, DELTA, SNAPSHOT, TOOL, ANSWER_FINISHED, REFUSED, NOTICE,
    FEEDBACK_SAVED, ERROR,
)  # fmt: skip
RATINGS = ("up", "down")
FEEDBACK_COMMENT_CHARS = 2000

CLIENT_ID_CHARS = 64

MALFORMED = "That message was not valid JSON."
NOT_AN_OBJECT = "A message must be a JSON object with a type."
UNKNOWN_TYPE = "Unknown message type: {type!r}."
FRAME_TOO_LARGE = "That message is too large."
EMPTY = "Type a message first."
NOT_TEXT = "A message must be text."
INTERNAL = "Something went wrong on our side. Please try again."
TOO_LONG = "That message is too long ({length} characters; the limit is {limit})."
BAD_FEEDBACK = "Feedback is a thumbs up or down on an answer."
NO_SUCH_ANSWER = "There is no finished answer here to rate."
NOT_YOUR_ANSWER = "Only the person the answer was for can rate it."
BAD_EDIT = "An edit names the message it changes."


class FrameRejected(DomainError):
    """A frame from the page that cannot be taken: the page gets an `error` frame."""

    code = "malformed"


class Malformed(FrameRejected):
    code = "malformed"


class TooLarge(FrameRejected):
    code = "too_large"


class UnknownType(FrameRejected):
    code = "unknown_type"


class EmptyText(FrameRejected):
    code = "empty"


class TooLong(FrameRejected):
    code = "too_long"


class InvalidText(FrameRejected):
    code = "invalid_text"


def encode(frame: dict) -> str:
    """A frame as JSON text: orjson, several times faster than the standard library at each
    of a stream's frames; the standard library for what orjson refuses (a lone surrogate in a
    text)."""
    try:
        return orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(frame)


def parse(raw: str, *, max_chars: int) -> dict:
    """The frame in a websocket message: a JSON object with a string `type`."""
    if len(raw) > max_chars:
        raise TooLarge(FRAME_TOO_LARGE)
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        raise Malformed(MALFORMED) from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise Malformed(NOT_AN_OBJECT)
    return frame


def text(frame: dict, field: str = "content", *, limit: int) -> str:
    """A person's text in a frame: a non-empty string of at most `limit` characters that can be
    stored as it is (no NUL, no lone surrogate). A refusal gives the text back to the page."""
    value = frame.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidText(NOT_TEXT, text="")
    if value is None or not value.strip():
        raise EmptyText(EMPTY, text=value or "")
    if len(value) > limit:
        raise TooLong(TOO_LONG.format(length=len(value), limit=limit), text=value)
    try:
        check_text(value)
    except TextRejected as error:
        raise InvalidText(str(error), text=value) from None
    return value


class InvalidFeedback(FrameRejected):
    code = "invalid_feedback"


def feedback(frame: dict) -> tuple[int, str, str]:
    """The answer's id, the rating ("up" or "down") and the comment ("" if none) of a
    `feedback` frame; the comment is a person's text, checked like any other."""
    message_id, rating = frame.get("message_id"), frame.get("rating")
    if not isinstance(message_id, int) or isinstance(message_id, bool) or rating not in RATINGS:
        raise InvalidFeedback(BAD_FEEDBACK)
    comment = frame.get("comment")
    if comment is None or (isinstance(comment, str) and not comment.strip()):
        return message_id, rating, ""
    return message_id, rating, text(frame, "comment", limit=FEEDBACK_COMMENT_CHARS).strip()


class InvalidEdit(FrameRejected):
    code = "invalid_edit"


def edit(frame: dict, *, limit: int) -> tuple[int, str]:
    """The id of the message an `edit` frame changes and its new text (checked like any
    person's text)."""
    message_id = frame.get("message_id")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        content = frame.get("content")
        raise InvalidEdit(BAD_EDIT, text=content if isinstance(content, str) else "")
    return message_id, text(frame, limit=limit)


def feedback_saved(message_id: int, rating: str, comment: str) -> dict:
    return {"type": FEEDBACK_SAVED, "message_id": message_id, "rating": rating, "comment": comment}


def client_id(frame: dict) -> str:
    value = frame.get("client_id")
    return value[:CLIENT_ID_CHARS] if isinstance(value, str) else ""


def replay_session_id(frame: dict) -> str:
    """The browser's PostHog session id a frame that starts an answer carries, or "" (none,
    or not a valid one: never an error for the person)."""
    if frame.get("type") not in STARTS_AN_ANSWER:
        return ""
    return ai.replay.valid(frame.get(REPLAY_SESSION_FIELD))


# --- Frames to the page ----------------------------------------------------------------------


def ready(in_progress: dict | None, **state) -> dict:
    return {"type": READY, "in_progress": in_progress, **state}


def user_message(message: dict, html: str, **extra) -> dict:
    return {"type": USER_MESSAGE, "message": message, "html": html, **extra}


def answer_started(message_id: int, html: str) -> dict:
    return {"type": ANSWER_STARTED, "message_id": message_id, "html": html}


def tool(message_id: int, html: str, **fields) -> dict:
    return {"type": TOOL, "message_id": message_id, "html": html, **fields}


def answer_finished(message_id: int, message: dict, html: str) -> dict:
    return {"type": ANSWER_FINISHED, "message_id": message_id, "message": message, "html": html}


def refused(message_id: int | None, code: str, message: str, **extra) -> dict:
    return {"type": REFUSED, "message_id": message_id, "code": code, "message": message, **extra}


def delta(message_id: int, offset: int, text: str) -> dict:
    return {"type": DELTA, "message_id": message_id, "offset": offset, "text": text}


def snapshot(message_id: int, text: str) -> dict:
    return {"type": SNAPSHOT, "message_id": message_id, "text": text}


def error(code: str, message: str, **extra) -> dict:
    return {"type": ERROR, "code": code, "message": message, **extra}


def notice(code: str, message: str, **extra) -> dict:
    return {"type": NOTICE, "code": code, "message": message, **extra}
