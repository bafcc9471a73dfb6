"""The notes under an answer that say which tools the assistant used: each app says how its own
tools show (iridium.live.tool_notes), and iridium/live renders what it is given without naming
any tool."""

import re
from pathlib import Path

import pytest

from chat.tools import CHAT_TOOLS
from codegen.models import Creation
from iridium import ai
from iridium.live import tool_notes
from iridium.live.rendering import message_html
from support import answers as support_answers

ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "iridium" / "live"
TOOLS = sorted({tool.name for tool in CHAT_TOOLS} | {support_answers.HAND_OVER})


def test_the_apps_tools_have_notes_of_their_own():
    assert set(TOOLS) == {"search_knowledge_base", "create_support_ticket", "hand_over_to_human"}
    assert set(TOOLS) <= set(tool_notes._notes)  # registered by chat and support


def test_live_names_none_of_the_apps_tools():
    """Adding or changing a tool is its app's business: the live floor's code and templates
    never name one."""
    named = {
        str(path.relative_to(ROOT)): name
        for path in LIVE.rglob("*")
        if path.suffix in (".py", ".html") and "migrations" not in path.parts
        for name in TOOLS
        if name in path.read_text()
    }
    assert named == {}


def notes_shown(*tools: dict) -> list[str]:
    """The tool notes of an answer that used `tools`, as its page shows them."""
    answer = Creation(content="Done.", html="<p>Done.</p>", tool_events=list(tools))
    html = message_html(answer)
    return re.findall(r'<li class="tool-note[^"]*">.*?</li>', html)


@pytest.mark.parametrize(
    ("tool", "shown"),
    [
        (
            {
                "name": "search_knowledge_base",
                "ok": True,
                "results": 2,
                "sources": [
                    {"title": "Passwords & you", "url": "/support/articles/4/"},
                    {"title": "Billing", "url": "/support/articles/9/"},
                ],
            },
            '<li class="tool-note">Searched the knowledge base: <span class="sources">'
            '<a href="/support/articles/4/">Passwords &amp; you</a>, '
            '<a href="/support/articles/9/">Billing</a></span></li>',
        ),
        (
            {"name": "search_knowledge_base", "ok": True, "results": 1, "sources": []},
            '<li class="tool-note">Searched the knowledge base (1 article)</li>',
        ),
        (
            {"name": "search_knowledge_base", "ok": False, "results": 0, "sources": []},
            '<li class="tool-note failed">Searched the knowledge base (0 articles)</li>',
        ),
        (
            {
                "name": "create_support_ticket",
                "ok": True,
                "ticket": {"id": 12, "url": "/support/tickets/12/"},
            },
            '<li class="tool-note">Filed <a href="/support/tickets/12/">ticket #12</a></li>',
        ),
        (
            {"name": "create_support_ticket", "ok": False},
            '<li class="tool-note failed">Used create_support_ticket</li>',
        ),
        (
            {"name": "hand_over_to_human", "ok": True},
            '<li class="tool-note">Handed over to staff</li>',
        ),
        (
            {"name": "<b>other</b>", "ok": True},
            '<li class="tool-note">Used &lt;b&gt;other&lt;/b&gt;</li>',
        ),
    ],
)
def test_each_tool_shows_as_its_app_says(tool, shown):
    assert notes_shown(tool) == [shown]
    assert tool_notes.html(tool).strip() == shown  # the `tool` frame's note is the same


def test_what_a_note_keeps_of_a_tools_result_is_its_apps_choice():
    search = ai.ToolCalled(
        name="search_knowledge_base",
        arguments={"query": "password"},
        result={
            "results": [
                {"title": "Reset", "url": "/support/articles/1/", "excerpt": "Open Settings"},
                {"title": "Elsewhere", "url": "https://evil.example/", "excerpt": "x"},
                "not an article",
            ]
        },
    )
    assert tool_notes.describe(search) == {
        "name": "search_knowledge_base",
        "ok": True,
        "results": 2,
        "sources": [{"title": "Reset", "url": "/support/articles/1/"}],  # no excerpt, no link out
    }
    ticket = ai.ToolCalled(
        name="create_support_ticket",
        arguments={},
        result={"ticket_id": 3, "title": "Refund", "url": "/support/tickets/3/"},
    )
    assert tool_notes.describe(ticket) == {
        "name": "create_support_ticket",
        "ok": True,
        "ticket": {"id": 3, "url": "/support/tickets/3/"},
    }
    failed = ai.ToolCalled(
        name="create_support_ticket", arguments={}, result="No title.", is_error=True
    )
    assert tool_notes.describe(failed) == {"name": "create_support_ticket", "ok": False}
    other = ai.ToolCalled(name="other", arguments={}, result={"secret": "kept out"})
    assert tool_notes.describe(other) == {"name": "other", "ok": True}
