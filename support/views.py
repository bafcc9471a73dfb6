from asgiref.sync import async_to_sync, sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from iridium.accounts import audit
from iridium.infra.db import give_back_connection
from iridium.infra.text import query_text
from iridium.live import fanout, protocol, runs
from iridium.live.rendering import attach_feedback, message_html, render_markdown

from . import access, answers, selectors, services
from .forms import QueueFilterForm, TicketForm
from .models import Article, Ticket


@login_required
def index(request):
    return render(
        request,
        "support/index.html",
        {
            "tickets": Ticket.objects.filter(user=request.user),
            "form": TicketForm(),
            "is_agent": access.is_agent(request.user),
        },
    )


@require_POST
async def new(request):
    """File a ticket; the assistant starts answering it at once, in this server's event loop.
    What needs the database (the session and user, the form, the ticket and the answer's first
    row) is done in one step off the event loop (`_new_ticket`)."""
    # While this worker stops no answer starts: the ticket is answered when opened on another.
    made = await sync_to_async(_new_ticket)(request, answer=not runs.draining())
    if isinstance(made, HttpResponse):
        return made  # the log-in page, or the form and what is wrong with it
    ticket, start = made
    answers.begin(start)
    return redirect("support:ticket", pk=ticket.pk)


@login_required
def _new_ticket(request, *, answer: bool) -> tuple[Ticket, answers.Start | None] | HttpResponse:
    form = TicketForm(request.POST)
    if form.is_valid():
        try:
            ticket = services.create_ticket(user=request.user, **form.cleaned_data)
        except services.InvalidTicket as error:  # what the form does not check itself
            form.add_error(None, error.message)
        else:
            # Its page opens once the ticket is filed: nobody can watch the answer before.
            start = answers.prepare(ticket.pk, shown=False) if answer else None
            give_back_connection()
            return ticket, start
    tickets = Ticket.objects.filter(user=request.user)
    return render(request, "support/index.html", {"tickets": tickets, "form": form}, status=400)


@login_required
def ticket(request, pk):
    found = access.get_ticket(request.user, pk)
    is_agent = access.is_agent(request.user)
    context = {
        "ticket": found,
        "thread": attach_feedback(request.user, found.messages.select_related("author")),
        "is_agent": is_agent,
        "replying_as_agent": is_agent and request.user.pk != found.user_id,
        "finished": found.status in services.FINISHED,
    }
    if is_agent:
        context["agents"] = access.agents()
        context["ai_cost"] = selectors.ai_costs([found]).get(found.pk)
        context["statuses"] = Ticket.Status.choices
    if request.user.pk != found.user_id:
        audit.record(request.user, audit.READ_TICKET, found.ai_session_id, subject=found.user)
    return render(request, "support/ticket.html", context)


@login_required
@require_POST
async def reopen(request, pk):
    """The owner reopens a resolved or closed ticket: open again, with a note in its thread that
    every open page of the ticket (staff's too) shows at once."""
    user = await request.auser()
    found = await sync_to_async(access.get_ticket)(user, pk)
    note = await sync_to_async(services.reopen)(ticket=found, by=user)
    html = await sync_to_async(message_html)(note)
    frame = {"type": protocol.USER_MESSAGE, "message": note.frame(), "html": html}
    await fanout.group_send(answers.TARGET.key(found.pk), frame)
    return redirect("support:ticket", pk=pk)


@access.agent_required
def queue(request):
    form = QueueFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    tickets = list(
        selectors.queue(
            status=filters.get("status", ""),
            priority=filters.get("priority", ""),
            category=filters.get("category", ""),
            assigned=filters.get("assigned", ""),
            query=filters.get("q", ""),
        )[:200]
    )
    costs = selectors.ai_costs(tickets)
    for listed in tickets:
        listed.ai_cost = costs.get(listed.pk)
    return render(
        request,
        "support/queue.html",
        {"tickets": tickets, "form": form, "agents": access.agents(), "is_agent": True},
    )


@access.agent_required
@require_POST
def assign(request, pk):
    found = get_object_or_404(Ticket, pk=pk)
    agent_id = request.POST.get("agent", "")
    agent = None
    if agent_id:
        agent = access.agents().filter(pk=agent_id if agent_id.isdigit() else 0).first()
        if agent is None:
            messages.error(request, "No such agent.")
            return redirect("support:ticket", pk=pk)
    services.assign(ticket=found, agent=agent, by=request.user)
    return redirect("support:ticket", pk=pk)


@access.agent_required
@require_POST
def set_status(request, pk):
    found = get_object_or_404(Ticket, pk=pk)
    services.set_status(ticket=found, status=request.POST.get("status", ""), by=request.user)
    async_to_sync(answers.announce_status)(found)  # live on the customer's open page
    return redirect("support:ticket", pk=pk)


@login_required
def articles(request):
    query = query_text(request)
    if query:
        found = selectors.search_articles(query, limit=selectors.SEARCH_LIMIT)
    else:
        found = Article.objects.filter(published=True)
    return render(request, "support/articles.html", {"articles": found, "query": query})


@login_required
def article(request, pk):
    found = get_object_or_404(Article, pk=pk)
    if not found.published and not request.user.is_staff:
        raise Http404
    return render(
        request, "support/article.html", {"article": found, "body": render_markdown(found.body)}
    )
