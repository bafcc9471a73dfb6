"""Reads from support."""

from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Count, Q, Sum

from iridium.ai.models import Generation

from .models import Article, Ticket

SEARCH_LIMIT = 20


def search_articles(query: str, *, limit: int = 5, include_drafts: bool = False) -> list[Article]:
    """Articles matching `query`, most relevant first.

    PostgreSQL: full-text search (English stemming; title weighs most, then tags, then body).
    Other databases: articles containing any of the words, ranked by weighted occurrences.
    """
    query = (query or "").strip()[:200]
    if not query:
        return []
    articles = Article.objects.all() if include_drafts else Article.objects.filter(published=True)
    if connection.vendor == "postgresql":
        vector = (
            SearchVector("title", weight="A", config="english")
            + SearchVector("tags", weight="B", config="english")
            + SearchVector("body", weight="C", config="english")
        )
        search = SearchQuery(query, search_type="websearch", config="english")
        ranked = (
            articles.annotate(rank=SearchRank(vector, search))
            .filter(rank__gt=0)
            .order_by("-rank", "title")
        )
        return list(ranked[:limit])
    return _rank_by_words(articles, query, limit)


def _rank_by_words(articles, query: str, limit: int) -> list[Article]:
    words = [w.lower() for w in query.split() if len(w) > 2][:10]
    if not words:
        return []
    matches = Q()
    for word in words:
        matches |= Q(title__icontains=word) | Q(body__icontains=word) | Q(tags__icontains=word)

    def score(article):
        title, tags, body = article.title.lower(), article.tags.lower(), article.body.lower()
        return sum(4 * title.count(w) + 2 * tags.count(w) + body.count(w) for w in words)

    found = list(articles.filter(matches)[:200])
    return sorted(found, key=lambda a: (-score(a), a.title))[:limit]


def queue(*, status="", priority="", category="", assigned="", query=""):
    """All tickets for staff, filtered; `assigned` is an agent's id or "none"."""
    tickets = Ticket.objects.select_related("user", "assigned_to")
    if status:
        tickets = tickets.filter(status=status)
    if priority:
        tickets = tickets.filter(priority=priority)
    if category:
        tickets = tickets.filter(category=category)
    if assigned == "none":
        tickets = tickets.filter(assigned_to__isnull=True)
    elif assigned.isdigit():
        tickets = tickets.filter(assigned_to_id=int(assigned))
    if query:
        tickets = tickets.filter(
            Q(title__icontains=query) | Q(description__icontains=query)
            | Q(user__username__icontains=query)
        )  # fmt: skip
    return tickets.order_by("-updated_at")


def ai_costs(tickets) -> dict[int, Decimal]:
    """What the AI spent on each ticket (its answers' traces, grouped by its session), in one
    query."""
    by_session = {ticket.ai_session_id: ticket.pk for ticket in tickets}
    totals = (
        Generation.objects.filter(session_id__in=by_session)
        .values("session_id")
        .annotate(total=Sum("total_cost_usd"))
    )
    return {by_session[row["session_id"]]: row["total"] or Decimal(0) for row in totals}


def ticket_outcomes(since) -> list[dict]:
    """Tickets filed since `since`: resolved by the assistant alone (no person assigned, asked
    for or replying), resolved with a person, or not resolved yet. The console's ROI reads it."""
    done = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
    tickets = Ticket.objects.filter(created_at__gte=since).annotate(
        agent_replies=Count("messages", filter=Q(messages__kind="agent"))
    )
    out = []
    for ticket in tickets.only("pk", "status", "assigned_to", "needs_human"):
        if ticket.status not in done:
            outcome = "open"
        elif ticket.assigned_to_id or ticket.needs_human or ticket.agent_replies:
            outcome = "person"
        else:
            outcome = "assistant"
        out.append({"session_id": ticket.ai_session_id, "outcome": outcome})
    return out
