"""How conversations are listed: grouped by when they were last active (Today, Yesterday,
Previous 7 days, Previous 30 days, then by month), and, in search results, the passage of a
message that matched, with the match marked."""

import re
from dataclasses import dataclass
from datetime import date

from django.utils import timezone

SNIPPET_CHARS = 60  # on each side of the match


@dataclass
class Group:
    label: str
    conversations: list


def by_date(conversations, today: date | None = None) -> list[Group]:
    """`conversations` (newest first) in groups by the day of their last activity."""
    today = today or timezone.localdate()
    groups: list[Group] = []
    for conversation in conversations:
        label = _label(timezone.localdate(conversation.updated_at), today)
        if not groups or groups[-1].label != label:
            groups.append(Group(label, []))
        groups[-1].conversations.append(conversation)
    return groups


def _label(day: date, today: date) -> str:
    age = (today - day).days
    if age <= 0:
        return "Today"
    if age == 1:
        return "Yesterday"
    if age <= 7:
        return "Previous 7 days"
    if age <= 30:
        return "Previous 30 days"
    return day.strftime("%B %Y")


@dataclass
class Snippet:
    before: str
    match: str
    after: str


def snippet(text: str, query: str) -> Snippet | None:
    """The passage of `text` around the first place `query` occurs (any case), or None."""
    found = re.search(re.escape(query), text, flags=re.IGNORECASE)
    if found is None:
        return None
    start, end = found.span()
    before = text[max(0, start - SNIPPET_CHARS) : start]
    after = text[end : end + SNIPPET_CHARS]
    if start > SNIPPET_CHARS:
        before = "…" + before.split(" ", 1)[-1] if " " in before else "…" + before
    if end + SNIPPET_CHARS < len(text):
        after = (after.rsplit(" ", 1)[0] if " " in after else after) + "…"
    return Snippet(_flat(before), found.group(), _flat(after))


def _flat(text: str) -> str:
    """Line breaks and runs of white space as single spaces (a snippet is one line)."""
    return re.sub(r"\s+", " ", text)


# What search reads: what the page can show (the latest messages and the answers' earlier
# versions), not what an edit replaced.
SEARCHED = ("latest", "earlier")


def with_snippets(conversations, query: str) -> list:
    """Search results: each conversation with `snippet` set from its first matching message
    (None when only its title matched)."""
    from .models import Message

    found = list(conversations)
    texts = {}
    matching = Message.objects.filter(
        conversation__in=found, content__icontains=query, version__in=SEARCHED
    ).order_by("conversation_id", "created_at", "pk")
    for conversation_id, content in matching.values_list("conversation_id", "content"):
        texts.setdefault(conversation_id, content)
    for conversation in found:
        text = texts.get(conversation.pk)
        conversation.snippet = snippet(text, query) if text else None
    return found
