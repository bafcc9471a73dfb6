"""The support assistant: answers a new ticket first and the customer's follow-ups, streamed into
the ticket's thread, until a person takes over. It acts for the ticket's owner only."""

from dataclasses import dataclass

from asgiref.sync import sync_to_async

from iridium import ai
from iridium.live import fanout, protocol, runs, writer
from iridium.live.consumers import Target
from iridium.live.models import AnswerBeingWritten
from iridium.live.rendering import message_html
from iridium.live.tool_notes import ToolNote

from . import services
from .models import Ticket, TicketMessage
from .tools import SEARCH_KNOWLEDGE_BASE

TARGET = Target(prefix="ticket", noun="ticket")
# The support assistant's own tool, and how its use shows under an answer (registered by
# support's AppConfig).
HAND_OVER = "hand_over_to_human"
HAND_OVER_NOTE = ToolNote(template="support/tools/_hand_over_note.html")
SYSTEM_PROMPT = (
    "You are Iridium's support assistant, answering a customer's ticket. Search the knowledge "
    "base before answering how-to questions and cite the articles you use. Be precise and "
    "kind. When you cannot solve the problem, or the customer asks for a person, call "
    "hand_over_to_human and tell the customer that a member of staff will take over."
)
BUSY = "The assistant is still answering this ticket."
HANDED_OVER = "A member of staff will take over this ticket."
STATUS_CHANGED = "This ticket is now {status}."


def run_key(ticket_id: int) -> str:
    return TARGET.key(ticket_id)


def _hand_over_tool(ticket_id: int) -> ai.Tool:
    async def hand_over(arguments, context):
        ticket = await Ticket.objects.aget(pk=ticket_id)
        if context.user is None or ticket.user_id != context.user.pk:
            raise ai.ToolFailed("This ticket is not the customer's.")
        await sync_to_async(services.ask_for_human)(ticket=ticket)
        return {"handed_over": True}

    return ai.Tool(
        name=HAND_OVER,
        description="Hand the ticket over to a member of staff.",
        parameters={
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why, in a sentence."}},
        },
        run=hand_over,
    )


@dataclass
class Start:
    """The ticket, its new answer saved "being written", the thread the model is sent (and
    whether this is the first answer), and the answer's HTML, rendered in the thread that
    saved it: never on the event loop, where it would hold up other answers' tokens."""

    ticket: Ticket
    answer: TicketMessage
    thread: list[dict]
    first_response: bool
    answer_html: str | None  # None: no page can show it yet (`writer.start`)


def prepare(ticket_id: int, *, shown: bool = True) -> Start | None:
    """A new answer and what the model is sent, written and read in one transaction (one trip
    to the database's thread); None when the assistant should not answer now (a person took
    over, or an answer is being written here or by another worker). Not `shown`: the ticket
    is new, its page not open yet, and the answer's HTML is not rendered."""
    key = run_key(ticket_id)

    def write():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("user", "assigned_to")
            .get(pk=ticket_id)
        )
        if runs.running(key) or not ticket.ai_answers:
            return None
        answer = TicketMessage.objects.create(
            ticket=ticket, kind=TicketMessage.Kind.ASSISTANT, status=TicketMessage.Status.STREAMING
        )
        thread, first_response = _thread(ticket, answer)
        return Start(ticket, answer, thread, first_response, answer_html=None)

    answers = TicketMessage.objects.filter(ticket_id=ticket_id, kind=TicketMessage.Kind.ASSISTANT)
    try:
        start = TicketMessage.start_one_at_a_time(write, answers, key=key)
    except AnswerBeingWritten:
        return None
    if start is not None and shown:
        start.answer_html = message_html(start.answer)
    return start


def _thread(ticket: Ticket, answer: TicketMessage) -> tuple[list[dict], bool]:
    """The ticket's thread as the model reads it, and whether this is the first answer."""
    thread = [{"role": "system", "content": SYSTEM_PROMPT}]
    first = True
    messages = ticket.messages.exclude(pk=answer.pk).exclude(content="")
    for message in messages.exclude(kind=TicketMessage.Kind.NOTE):
        if message.kind == TicketMessage.Kind.ASSISTANT:
            first = False
            thread.append({"role": "assistant", "content": message.content})
        elif message.kind == TicketMessage.Kind.AGENT:
            thread.append({"role": "assistant", "content": f"(Staff) {message.content}"})
        else:
            thread.append({"role": "user", "content": message.content})
    thread[1]["content"] = f"Ticket: {ticket.title}\n\n{thread[1]['content']}"
    return thread, first


async def start_answer(ticket_id: int) -> bool:
    """Start the assistant's answer if it should answer now; False if it should not (nor
    while this worker stops: it answers when the ticket is opened on another)."""
    if runs.draining():
        return False
    return begin(await sync_to_async(prepare)(ticket_id))


def begin(start: Start | None) -> bool:
    """Start writing the answer `prepare` saved, if it saved one (on the event loop)."""
    if start is None or runs.draining():
        return False
    ticket, answer = start.ticket, start.answer
    replay_session_id = ai.replay.current()  # of the request or frame that starts it

    async def ask():
        return ai.Request(
            user=ticket.user,  # the AI acts for the ticket's owner, whoever watches
            feature="customer-support",
            messages=start.thread,
            trace_id=answer.trace_id,
            ai_session_id=ticket.ai_session_id,
            properties={
                "ticketId": ticket.pk,
                "ticketPriority": ticket.priority,
                "ticketCategory": ticket.category,
                "agentAssigned": (
                    ticket.assigned_to.get_username() if ticket.assigned_to else "ai-only"
                ),
                "firstResponse": start.first_response,
            },
            tools=[SEARCH_KNOWLEDGE_BASE, _hand_over_tool(ticket.pk)],
            replay_session_id=replay_session_id,
        )

    async def on_refused(refusal):
        await answer.adelete()
        return {}

    writer.start(run_key(ticket.pk), answer, html=start.answer_html, ask=ask, on_refused=on_refused)
    return True


async def announce_status(ticket: Ticket) -> None:
    """Tell the ticket's open pages (the customer's, other agents') its new status."""
    label = ticket.get_status_display()
    await fanout.group_send(
        run_key(ticket.pk),
        protocol.notice(
            "status",
            STATUS_CHANGED.format(status=label.lower()),
            status=ticket.status,
            label=label,
        ),
    )


def pending_first_response(ticket: Ticket) -> bool:
    """A ticket nobody has answered yet (filed from a chat, or its first answer was refused)."""
    return (
        ticket.ai_answers and not ticket.messages.exclude(kind=TicketMessage.Kind.CUSTOMER).exists()
    )
