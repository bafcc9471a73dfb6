"""PostgreSQL ends every connection while answers stream (a restart, a failover, an operator's
pg_terminate_backend): the answers are saved on fresh connections and reach the page."""

import asyncio

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from chat.models import Conversation, Message
from tests.conftest import require
from tests.helpers.sockets import frames_until, idle, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def held_connection_pid() -> int:
    """In asgiref's thread for synchronous work, where answers are saved: its connection's
    server process (the connection stays checked out until something closes it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> bool:
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        return admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


async def test_answers_finish_and_are_saved_when_postgresql_ends_the_connections(
    ai_settings, make_user
):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    users = [await sync_to_async(make_user)(f"user{index}") for index in range(3)]
    sockets, conversations = [], []
    for user in users:
        conversation = await Conversation.objects.acreate(user=user)
        socket, connected, _ = await open_socket(user, "chat", conversation.pk)
        assert connected
        await socket.receive_json_from()  # ready
        await socket.send_json_to(
            {"type": "send", "content": "A long story [[demo:slow=0.03]] [[demo:words=40]]"}
        )
        sockets.append(socket)
        conversations.append(conversation)
    for socket in sockets:
        await frames_until(socket, "delta")
    # The database ends the connection the answers will be saved on.
    pid = await sync_to_async(held_connection_pid)()
    assert await asyncio.to_thread(terminate, pid)
    for socket in sockets:
        finished = (await frames_until(socket, "answer_finished"))[-1]["message"]
        assert finished["status"] == "complete" and len(finished["content"].split()) >= 40
        await socket.disconnect()
    for conversation in conversations:
        await idle("chat", conversation.pk)
        answer = await Message.objects.aget(conversation=conversation, role="assistant")
        assert answer.status == "complete" and len(answer.content.split()) >= 40


async def test_a_budget_warning_is_noted_on_a_fresh_connection_and_never_fails_a_call(
    ai_settings, make_user
):
    """Found by the soak: the note that a budget crossed 80% was written on the connection the
    database had ended, and the answer failed with it."""
    from decimal import Decimal

    from iridium.ai import budgets
    from iridium.ai.models import BudgetWarning

    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    user = await sync_to_async(make_user)("bea")
    subject = budgets.Subject(f"user:{user.pk}", Decimal("1.00"), {"user_id": user.pk})
    pid = await sync_to_async(held_connection_pid)()
    assert await asyncio.to_thread(terminate, pid)
    spent = int(Decimal("0.85") * budgets.NANOS)
    await budgets._note_crossings(subject, before=0, after=spent)
    assert [w.percent async for w in BudgetWarning.objects.filter(user=user)] == [80]
    # A note that cannot be written at all is logged and skipped, not raised.
    broken = budgets.Subject("user:0", Decimal("1.00"), {"no_such_field": 1})
    await budgets._note_crossings(broken, before=0, after=spent)


async def test_admission_and_the_knowledge_base_read_again_on_a_fresh_connection(
    ai_settings, make_user
):
    """Found by the soak: a call admitted while Redis was away read the budget tables on the
    connection the database had just ended, and the answer that had started failed."""
    from dataclasses import replace
    from decimal import Decimal

    from iridium.ai import budgets
    from iridium.ai.callers import load_caller
    from support.models import Article
    from support.tools import _search

    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    user = await sync_to_async(make_user)("cai")
    await Article.objects.acreate(
        title="Resetting a password", body="Open the account page.", published=True
    )
    caller = await sync_to_async(load_caller)(user)

    async def end_the_held_connection():
        assert await asyncio.to_thread(terminate, await sync_to_async(held_connection_pid)())

    ai_settings.REDIS_URL = ""  # counters in this process, started from the tables
    await end_the_held_connection()
    admitted = await budgets.reserve(caller, span_id="s1", first=True, amount=Decimal("0.01"))
    assert admitted is not None
    # Redis away: the tables, under row locks, decide.
    await end_the_held_connection()
    reservation = replace(admitted, span_id="s2", store=None)
    await budgets._DatabaseStore().reserve(reservation, None)
    await end_the_held_connection()
    found = await _search({"query": "password"}, None)
    assert [result["title"] for result in found["results"]] == ["Resetting a password"]


async def test_an_async_read_is_made_again_on_a_fresh_connection(make_user):
    """Found by the soak: the retry closed the event loop thread's connection instead of the one
    the read had used in asgiref's thread (Django refused: "created in a thread can only be used
    in that same thread"), so the read failed again on the ended connection."""
    from iridium.accounts.models import User
    from iridium.infra.db import reading_again_if_dropped

    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    user = await sync_to_async(make_user)("dee")
    await User.objects.aget(pk=user.pk)  # asgiref's thread now holds a connection
    assert await asyncio.to_thread(terminate, await sync_to_async(held_connection_pid)())
    found = await reading_again_if_dropped(lambda: User.objects.aget(pk=user.pk))
    assert found.username == "dee"
