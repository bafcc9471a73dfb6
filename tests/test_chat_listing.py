"""Conversations listed by date of last activity, and search results with the matching passage
marked."""

import re
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from chat import listing
from chat.models import Conversation
from tests import factories

TODAY = date(2026, 12, 6)


def at(days_ago: int):
    moment = datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time())
    return SimpleNamespace(updated_at=timezone.make_aware(moment + timedelta(hours=12)))


def test_groups_follow_the_days():
    ages = [0, 0, 1, 3, 7, 8, 30, 31, 70]
    groups = listing.by_date([at(age) for age in ages], today=TODAY)
    assert [(g.label, len(g.conversations)) for g in groups] == [
        ("Today", 2),
        ("Yesterday", 1),
        ("Previous 7 days", 2),
        ("Previous 30 days", 2),
        ("November 2026", 1),
        ("September 2026", 1),
    ]


def test_a_snippet_marks_the_match_in_its_passage():
    text = "word " * 30 + "the Refund arrives on Friday " + "more " * 30
    found = listing.snippet(text, "refund")
    assert found.match == "Refund"
    assert found.before.startswith("…") and found.before.endswith("the ")
    assert found.after.startswith(" arrives on Friday") and found.after.endswith("…")
    assert listing.snippet("nothing here", "refund") is None


@given(st.text(min_size=1), st.text(min_size=1, max_size=5))
def test_a_snippet_holds_the_match_as_written(text, query):
    found = listing.snippet(text, query)
    if found is None:
        assert query.lower() not in text.lower()
    else:
        assert re.fullmatch(re.escape(query), found.match, flags=re.IGNORECASE)
        assert "\n" not in found.before + found.after


def test_the_index_groups_and_marks_what_matched(client, user):
    older = factories.conversation(
        user, title="Printer", messages=[("user", "It jams <b>again</b>")]
    )
    Conversation.objects.filter(pk=older.pk).update(updated_at=timezone.now() - timedelta(days=2))
    factories.conversation(user, title="Billing question")
    client.force_login(user)
    page = client.get(reverse("chat:index")).content.decode()
    assert page.index("Today") < page.index("Billing question") < page.index("Previous 7 days")
    assert page.index("Previous 7 days") < page.index("Printer")
    found = client.get(reverse("chat:index"), {"q": "jams"}).content.decode()
    assert "It <mark>jams</mark> &lt;b&gt;again&lt;/b&gt;" in found  # marked, and escaped
    assert "Billing question" not in found
