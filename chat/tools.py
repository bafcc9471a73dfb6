"""The chat assistant's tools: the knowledge-base search (support's) and filing a ticket. Each
acts for the user who is chatting (`context.user`), whatever the model puts in its arguments.
How filing a ticket shows under an answer is `TICKET_NOTE` (registered by chat's AppConfig)."""

from asgiref.sync import sync_to_async
from django.urls import reverse

from iridium import ai
from iridium.infra.text import storable
from iridium.live.tool_notes import ToolNote
from support.services import InvalidTicket, create_ticket
from support.tools import SEARCH_KNOWLEDGE_BASE


async def _create_ticket(arguments: dict, context: ai.ToolContext):
    try:
        ticket = await sync_to_async(create_ticket)(
            user=context.user,
            # The model's text, not the person's: made storable rather than refused.
            title=storable(str(arguments.get("title") or "")),
            description=storable(str(arguments.get("description") or "")),
            source="chat",
        )
    except InvalidTicket as error:
        raise ai.ToolFailed(error.message) from error
    return {
        "ticket_id": ticket.pk,
        "title": ticket.title,
        "url": reverse("support:ticket", args=[ticket.pk]),
    }


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


def _ticket_note(result: dict) -> dict:
    if "ticket_id" not in result:
        return {}
    return {"ticket": {"id": result["ticket_id"], "url": result["url"]}}


TICKET_NOTE = ToolNote(template="chat/tools/_ticket_note.html", describe=_ticket_note)
CHAT_TOOLS = [SEARCH_KNOWLEDGE_BASE, CREATE_SUPPORT_TICKET]
