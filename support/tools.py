"""Support's tools for assistants: the knowledge-base search, offered by the support assistant
and by chat."""

from django.urls import reverse

from iridium import ai
from iridium.infra.db import on_kept_connection_async
from iridium.infra.text import storable

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
