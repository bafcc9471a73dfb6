"""Writes to support: tickets, their messages, assignment and status."""

from django.db import transaction

from iridium.infra.errors import DomainError, NotAllowed

from . import access
from .models import Ticket, TicketMessage

TITLE_REQUIRED = "A ticket needs a title."
DESCRIPTION_REQUIRED = "A ticket needs a description."
TITLE_TOO_LONG = "A ticket title can be at most 200 characters."
DESCRIPTION_TOO_LONG = "A ticket description can be at most 10,000 characters."
MESSAGE_REQUIRED = "Write a message first."
MESSAGE_TOO_LONG = "A message can be at most 10,000 characters."
UNKNOWN_PRIORITY = "Unknown priority {value!r}: choose low, normal, high or urgent."
UNKNOWN_CATEGORY = "Unknown category {value!r}: choose billing, technical, account or other."
UNKNOWN_STATUS = "Unknown status {value!r}: choose open, pending, resolved or closed."
NOT_AN_AGENT = "Tickets can only be assigned to support agents."
STAFF_ONLY = "Only support agents can do that."
CLOSED = "This ticket is {status}. Reopen it to add a message."
ONLY_THE_OWNER_REOPENS = "Only the ticket's owner can reopen it."
NOT_FINISHED = "This ticket is still open."
REOPENED_NOTE = "{user} reopened the ticket."
FINISHED = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
MAX_TEXT = 10_000


class InvalidTicket(DomainError):
    """A ticket, message, priority, category, status or assignee that support does not take."""

    code = "invalid"
    http_status = 400


class TicketNotFinished(DomainError):
    """Only a resolved or closed ticket can be reopened."""

    code = "ticket_not_finished"
    http_status = 409


class TicketClosed(DomainError):
    """The customer wrote on a resolved or closed ticket: it takes messages again once reopened."""

    code = "ticket_closed"
    http_status = 409


def _clean_text(text, *, required: str, too_long: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidTicket(required)
    if len(text) > MAX_TEXT:
        raise InvalidTicket(too_long)
    return text


@transaction.atomic
def create_ticket(
    *, user, title: str, description: str, priority="normal", category="other", source="form"
) -> Ticket:
    title = (title or "").strip()
    if not title:
        raise InvalidTicket(TITLE_REQUIRED)
    if len(title) > 200:
        raise InvalidTicket(TITLE_TOO_LONG)
    description = _clean_text(
        description, required=DESCRIPTION_REQUIRED, too_long=DESCRIPTION_TOO_LONG
    )
    if priority not in Ticket.Priority.values:
        raise InvalidTicket(UNKNOWN_PRIORITY.format(value=priority))
    if category not in Ticket.Category.values:
        raise InvalidTicket(UNKNOWN_CATEGORY.format(value=category))
    ticket = Ticket.objects.create(
        user=user,
        title=title,
        description=description,
        priority=priority,
        category=category,
        source=source,
    )
    # The description opens the thread, so that the thread is the whole conversation.
    TicketMessage.objects.create(
        ticket=ticket, kind=TicketMessage.Kind.CUSTOMER, author=user, content=description
    )
    return ticket


@transaction.atomic
def post_message(*, ticket: Ticket, author, body: str) -> TicketMessage:
    """A message from the ticket's owner, or a reply from a support agent. A resolved or closed
    ticket takes no message from its owner until they reopen it (`reopen`)."""
    body = _clean_text(body, required=MESSAGE_REQUIRED, too_long=MESSAGE_TOO_LONG)
    # The status as it is now (staff may have closed it since the page was opened).
    ticket.status = (
        Ticket.objects.select_for_update().values_list("status", flat=True).get(pk=ticket.pk)
    )
    if access.is_agent(author) and author.pk != ticket.user_id:
        message = TicketMessage.objects.create(
            ticket=ticket, kind=TicketMessage.Kind.AGENT, author=author, content=body
        )
        # The customer's turn now.
        Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.PENDING)
        ticket.status = Ticket.Status.PENDING
        return message
    if author.pk != ticket.user_id:
        raise NotAllowed(STAFF_ONLY)
    if ticket.status in FINISHED:
        raise TicketClosed(CLOSED.format(status=ticket.get_status_display().lower()), text=body)
    message = TicketMessage.objects.create(
        ticket=ticket, kind=TicketMessage.Kind.CUSTOMER, author=author, content=body
    )
    if ticket.status != Ticket.Status.OPEN:
        Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.OPEN)
        ticket.status = Ticket.Status.OPEN
    return message


def ask_for_human(*, ticket: Ticket) -> Ticket:
    ticket.needs_human = True
    ticket.save(update_fields=["needs_human", "updated_at"])
    return ticket


@transaction.atomic
def reopen(*, ticket: Ticket, by) -> TicketMessage:
    """The owner reopens their resolved or closed ticket; the thread says so, for staff to see,
    and the ticket goes back to the queue as open."""
    if by.pk != ticket.user_id:
        raise NotAllowed(ONLY_THE_OWNER_REOPENS)
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if locked.status not in FINISHED:
        raise TicketNotFinished(NOT_FINISHED)
    locked.status = ticket.status = Ticket.Status.OPEN
    locked.save(update_fields=["status", "updated_at"])
    return TicketMessage.objects.create(
        ticket=ticket,
        kind=TicketMessage.Kind.NOTE,
        author=by,
        content=REOPENED_NOTE.format(user=by.get_username()),
    )


def assign(*, ticket: Ticket, agent, by) -> Ticket:
    if not access.is_agent(by):
        raise NotAllowed(STAFF_ONLY)
    if agent is not None and not access.is_agent(agent):
        raise InvalidTicket(NOT_AN_AGENT)
    ticket.assigned_to = agent
    ticket.save(update_fields=["assigned_to", "updated_at"])
    return ticket


def set_status(*, ticket: Ticket, status: str, by) -> Ticket:
    if not access.is_agent(by):
        raise NotAllowed(STAFF_ONLY)
    if status not in Ticket.Status.values:
        raise InvalidTicket(UNKNOWN_STATUS.format(value=status))
    ticket.status = status
    ticket.save(update_fields=["status", "updated_at"])
    return ticket
