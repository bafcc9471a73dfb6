"""Chat pages: who may see what (owner, another user, anonymous), and nothing runs from text."""

import pytest
from django.urls import reverse

from chat.models import Conversation, Message
from tests import factories

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def conversation(user):
    conversation = Conversation.objects.create(user=user, title="Plans for Tuesday")
    Message.objects.create(conversation=conversation, role="user", content="What about lunch?")
    return conversation


PAGES = [
    ("get", "chat:conversation"),
    ("post", "chat:rename"),
    ("get", "chat:delete"),
    ("post", "chat:delete"),
]


@pytest.mark.parametrize(("method", "name"), PAGES)
def test_another_user_gets_404_and_changes_nothing(client, make_user, conversation, method, name):
    client.force_login(make_user("mallory"))
    response = getattr(client, method)(reverse(name, args=[conversation.pk]), {"title": "pwned"})
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "Plans for Tuesday"


@pytest.mark.parametrize(("method", "name"), PAGES)
def test_anonymous_is_sent_to_log_in(client, conversation, method, name):
    response = getattr(client, method)(reverse(name, args=[conversation.pk]), {"title": "x"})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert Conversation.objects.filter(pk=conversation.pk, title="Plans for Tuesday").exists()


def test_the_owner_reads_the_whole_history(client, user, conversation):
    client.force_login(user)
    html = client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "Plans for Tuesday" in html and "What about lunch?" in html


def test_the_list_shows_only_ones_own_conversations_newest_first(client, user, make_user):
    older = Conversation.objects.create(user=user, title="Older")
    newer = Conversation.objects.create(user=user, title="Newer")
    Conversation.objects.create(user=make_user("mallory"), title="Not yours")
    client.force_login(user)
    listed = list(client.get(reverse("chat:index")).context["conversations"])
    assert listed == [newer, older]


def test_search_by_title_and_content(client, user, conversation):
    Conversation.objects.create(user=user, title="Unrelated")
    client.force_login(user)
    by_title = client.get(reverse("chat:index"), {"q": "tuesday"}).context["conversations"]
    by_content = client.get(reverse("chat:index"), {"q": "LUNCH"}).context["conversations"]
    assert list(by_title) == list(by_content) == [conversation]
    assert list(client.get(reverse("chat:index"), {"q": "zzz"}).context["conversations"]) == []


def test_new_rename_and_delete(client, user):
    client.force_login(user)
    response = client.post(reverse("chat:new"))
    conversation = Conversation.objects.get(user=user)
    assert response.url == reverse("chat:conversation", args=[conversation.pk])
    client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "  Renamed  "})
    conversation.refresh_from_db()
    assert conversation.title == "Renamed"
    empty = client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "  "})
    assert empty.status_code == 400 and "A conversation needs a title." in empty.content.decode()
    confirm = client.get(reverse("chat:delete", args=[conversation.pk]))
    assert "cannot be undone" in confirm.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    client.post(reverse("chat:delete", args=[conversation.pk]))
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_new_needs_post(client, user):
    client.force_login(user)
    assert client.get(reverse("chat:new")).status_code == 405
    assert not Conversation.objects.exists()


def test_script_in_messages_and_answers_stays_text(client, user):
    from iridium.infra.markdown import render

    conversation = Conversation.objects.create(user=user, title=XSS)
    Message.objects.create(conversation=conversation, role="user", content=XSS)
    answer_text = f"Here is what you sent: {XSS}\n\n```html\n{XSS}\n```"
    Message.objects.create(
        conversation=conversation, role="assistant", content=answer_text, html=render(answer_text)
    )
    client.force_login(user)
    html = client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    assert "<img" not in render(answer_text) and "<script" not in render(answer_text)


def test_markdown_rendering_is_sanitised():
    from iridium.infra.markdown import render

    html = render("[click](javascript:alert(1)) <b onclick=x>bold</b>\n\n```python\nprint(1)\n```")
    assert "href" not in html and "<b" not in html  # the link and the tag stay text
    assert "&lt;b onclick=x&gt;" in html
    assert '<span class="nb">print</span>' in html


def test_a_text_rendered_again_is_kept_once_and_a_long_one_is_not_kept():
    from iridium.infra import markdown

    short = "Short **answer** with `code`, the same each time it is served from the cache."
    first, again = markdown.render(short), markdown.render(short)
    assert first is again  # kept: the second is not rendered anew
    assert first == markdown._render(short)
    long = "word " * (markdown.RENDERED_CHARS // 5 + 1)
    assert len(long) > markdown.RENDERED_CHARS
    assert markdown.render(long) == markdown._render(long)
    assert markdown.render(long) is not markdown.render(long)  # too long to keep


def test_a_long_conversation_pages_its_earlier_messages(client, user, make_user):
    from chat.views import PAGE_MESSAGES

    total = PAGE_MESSAGES + 7
    conversation = factories.conversation(
        user, messages=[("user", f"line {n}") for n in range(total)]
    )
    client.force_login(user)
    page = client.get(reverse("chat:conversation", args=[conversation.pk]))
    shown = page.context["chat_messages"]
    assert [m.content for m in shown] == [f"line {n}" for n in range(7, total)]
    url = reverse("chat:earlier", args=[conversation.pk])
    earlier = client.get(url, {"before": page.context["earlier"]}).json()
    assert earlier["before"] is None  # nothing before these
    assert [f"line {n}" in earlier["html"] for n in range(7)] == [True] * 7
    assert "line 7" not in earlier["html"]
    assert client.get(url, {"before": "x"}).status_code == 400
    client.force_login(make_user("sid"))
    assert client.get(url, {"before": 1}).status_code == 404  # other people's: not there


def test_search_reads_what_the_page_can_show_not_what_an_edit_replaced(client, user):
    conversation = Conversation.objects.create(user=user, title="Trip")
    Message.objects.create(conversation=conversation, role="user", content="first, about otters",
                           version=Message.Version.REPLACED)  # fmt: skip
    Message.objects.create(conversation=conversation, role="assistant", content="an old badger",
                           version=Message.Version.EARLIER)  # fmt: skip
    Message.objects.create(conversation=conversation, role="user", content="now about beavers")
    client.force_login(user)

    def found(query):
        return list(client.get(reverse("chat:index"), {"q": query}).context["conversations"])

    assert found("otters") == []
    assert found("badger") == found("beavers") == [conversation]
    assert found("badger")[0].snippet.match == "badger"
