"""Support's tools for assistants: the knowledge-base search, offered by the support assistant
and by chat, and how its use shows under an answer (registered by support's AppConfig)."""

from django.urls import reverse

from iridium import ai
from iridium.infra.db import on_kept_connection_async
from iridium.infra.text import storable
from iridium.live.tool_notes import ToolNote

from .selectors import search_articles

SEARCH_RESULTS = 5
EXCERPT_CHARS = 400


async def _search(arguments: dict, context: ai.ToolContext):
    query = storable(str(arguments.get("query") or "")).replace("\ufffd", " ").strip()
    if not query:
        raise ai.ToolFailed("Give a search query.")
    # Made again on a fresh connection if the database ended the one it found.
    articles = await on_kept_connection_async(lambda: search_articles(query, limit=SEARCH_RESULTS))
    return {
        "results": [
            {
                "title": article.title,
                "url": reverse("support:article", args=[article.pk]),
                "excerpt": article.body[:EXCERPT_CHARS],
            }
            for article in articles
        ]
    }


SEARCH_KNOWLEDGE_BASE = ai.Tool(
    name="search_knowledge_base",
    description="Search the help articles of the knowledge base. Use it for how-to questions.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for."}},
        "required": ["query"],
    },
    run=_search,
)


def _search_note(result: dict) -> dict:
    found = [r for r in result.get("results", []) if isinstance(r, dict)]
    return {
        "results": len(found),
        # The articles the answer drew on, shown as links under it.
        "sources": [
            {"title": str(r.get("title", ""))[:200], "url": str(r.get("url", ""))}
            for r in found
            if r.get("title") and str(r.get("url", "")).startswith("/")
        ],
    }


SEARCH_NOTE = ToolNote(template="support/tools/_search_note.html", describe=_search_note)
