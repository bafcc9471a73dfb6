"""The notes under an answer that say which tools the assistant used ("Searched the knowledge
base: <links>", "Filed ticket #12").

The app that owns a tool says what its note shows: from its AppConfig.ready it registers a
`ToolNote` under the tool's name (support: the knowledge-base search and the hand-over; chat:
filing a ticket). This module names no tool: the writer keeps, beside the answer, what the
note's `describe` picks from the tool's result (`StreamedAnswer.tool_events`, never the raw
result), and every note is rendered from it by the tool's template inside live/_tool_note.html,
in the `tool` frame and on the page. A tool that registered no note shows as "Used <name>".
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from iridium import ai

# The note of a tool that registered none.
USED = "live/_tool_used.html"


def _nothing(result: dict) -> dict:
    return {}


@dataclass(frozen=True)
class ToolNote:
    """How a tool's use shows under an answer. `template` renders the note's text from `tool`
    (its `name`, `ok`, and what `describe` kept); `describe(result)` picks from the tool's
    result (a dict; {} for any other result, a failure's message say) the fields kept for the
    note: JSON, shown to the person the answer is for, so nothing the page should not show."""

    template: str
    describe: Callable[[dict], dict] = _nothing


_notes: dict[str, ToolNote] = {}


def register(name: str, note: ToolNote) -> None:
    """Show the tool `name`'s use with `note` (called from the owning app's ready())."""
    _notes[name] = note


def describe(event: ai.ToolCalled) -> dict:
    """What is kept of a tool's use for its note: its name, whether it worked, and what its
    note picks from the result."""
    note = _notes.get(event.name)
    result = event.result if isinstance(event.result, dict) else {}
    picked = note.describe(result) if note is not None else {}
    return {**picked, "name": event.name, "ok": not event.is_error}


def html(tool: dict) -> SafeString:
    """The note of a kept tool use (live/_tool_note.html around the tool's own template)."""
    note = _notes.get(tool.get("name"))
    text = render_to_string(note.template if note else USED, {"tool": tool}).strip()
    return mark_safe(render_to_string("live/_tool_note.html", {"tool": tool, "text": text}))
