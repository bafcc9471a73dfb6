"""One bad row never costs other rows theirs: text PostgreSQL cannot take (NUL, lone
surrogates) is made storable, a batch that fails is written again row by row, and the log names
the rows without their content."""

import asyncio
import logging
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from iridium.ai.models import Generation, Span
from iridium.ai.recorder import recorder
from iridium.ai.records import Caller, GenerationRecord, SpanRecord
from iridium.ai.types import Cost, Usage

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "plum-lighthouse-417"


def generation_record(user, *, span_id=None, text="hello", error=""):
    return GenerationRecord(
        created_at=timezone.now(),
        caller=Caller(user=user, organization_id=None, plan=user.plan),
        trace_id=f"conversation-{user.pk}",
        span_id=span_id or uuid.uuid4().hex,
        parent_id="",
        feature="chat",
        provider="openai",
        model="gpt-4o-mini",
        base_url="http://127.0.0.1/v1",
        stream=True,
        step=1,
        usage=Usage(10, 5),
        cost=Cost(Decimal("0.1"), Decimal("0.2"), Decimal("0.3")),
        latency_ms=12.5,
        time_to_first_token_ms=3.0,
        http_status=200,
        attempts=1,
        is_error=bool(error),
        error=error,
        finish_reason="stop",
        privacy_mode=False,
        tool_schemas=[],
        properties={"note": text},
        input=[{"role": "user", "content": text}],
        output=[{"role": "assistant", "content": text}],
    )


def span_record(user, arguments):
    return SpanRecord(
        created_at=timezone.now(),
        caller=Caller(user=user, organization_id=None, plan=user.plan),
        trace_id=f"conversation-{user.pk}",
        span_id=uuid.uuid4().hex,
        parent_id="root",
        name="tool:search_knowledge_base",
        feature="chat",
        latency_ms=1.0,
        is_error=False,
        error="",
        privacy_mode=False,
        properties={},
        input_state=arguments,
        output_state={"results": []},
    )


async def written():
    await asyncio.to_thread(recorder.flush)


async def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(make_user):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    recorder.submit(generation_record(alice, text="a\x00b\ud800c", error="bad \x00 byte"))
    recorder.submit(span_record(alice, {"query": "x\x00y", "k\x00": ["\udfff"]}))
    recorder.submit(generation_record(bob, text="plain"))
    await written()
    row = await Generation.objects.aget(user=alice)
    assert row.input == [{"role": "user", "content": "a\ufffdb\ufffdc"}]
    assert row.error == "bad \ufffd byte" and row.properties == {"note": "a\ufffdb\ufffdc"}
    span = await Span.objects.aget(user=alice)
    assert span.input_state == {"query": "x\ufffdy", "k\ufffd": ["\ufffd"]}
    assert await Generation.objects.filter(user=bob).aexists()


async def test_a_failing_row_is_the_only_one_lost_and_its_content_is_not_logged(make_user, caplog):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    broken = generation_record(alice, text=SECRET)
    broken.latency_ms = None  # the column takes no NULL: this row cannot be written
    with caplog.at_level(logging.INFO, logger="iridium.ai.recorder"):
        # In one batch: bob's row, alice's row that cannot be written, another of bob's.
        recorder.submit(generation_record(bob, text="one"))
        recorder.submit(broken)
        recorder.submit(generation_record(bob, text="two"))
        await written()
    assert await Generation.objects.filter(user=bob).acount() == 2
    assert not await Generation.objects.filter(user=alice).aexists()
    assert broken.span_id in caplog.text  # the row is named...
    assert SECRET not in caplog.text  # ...its content is not
