"""The assistant's tools. Each acts for the user who is chatting (`context.user`), whatever the
model puts in its arguments."""

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.urls import reverse

from iridium import ai
from support.selectors import search_articles
from support.services import create_ticket


async def _search(arguments: dict, context: ai.ToolContext):
    query = str(arguments.get("query") or "").strip()
    if not query:
        raise ai.ToolFailed("Give a search query.")
    articles = await sync_to_async(search_articles)(query, limit=5)
    return {
        "results": [
            {
                "title": article.title,
                "url": reverse("support:article", args=[article.pk]),
                "excerpt": article.body[:400],
            }
            for article in articles
        ]
    }


async def _create_ticket(arguments: dict, context: ai.ToolContext):
    try:
        ticket = await sync_to_async(create_ticket)(
            user=context.user,
            title=str(arguments.get("title") or ""),
            description=str(arguments.get("description") or ""),
            source="chat",
        )
    except ValidationError as error:
        raise ai.ToolFailed(" ".join(error.messages)) from error
    return {
        "ticket_id": ticket.pk,
        "title": ticket.title,
        "url": reverse("support:ticket", args=[ticket.pk]),
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
CREATE_SUPPORT_TICKET = ai.Tool(
    name="create_support_ticket",
    description="File a support ticket for the signed-in user when they ask for help from a "
    "person or their problem needs staff.",
    parameters={
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "A short summary."},
            "description": {"type": "string", "description": "The problem in detail."},
        },
        "required": ["title", "description"],
    },
    run=_create_ticket,
)
CHAT_TOOLS = [SEARCH_KNOWLEDGE_BASE, CREATE_SUPPORT_TICKET]
