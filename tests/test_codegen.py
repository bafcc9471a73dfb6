"""Generate: code by complexity with the Redis cache, writing in privacy mode, form errors,
history only for its author."""

import asyncio
import json
import logging

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from codegen import answers
from codegen.models import Creation
from iridium.ai import errors, posthog
from iridium.ai.models import Generation
from iridium.ai.recorder import recorder
from iridium.live import runs

CODE = {"prompt": "A function that adds two numbers", "language": "python", "framework": "",
        "complexity": "simple"}  # fmt: skip
CONTENT = {"prompt": "Our new lighthouse-keeper-plum-92 jam", "tone": "playful",
           "content_type": "product-description", "target_length": 120}  # fmt: skip
SECRET = "lighthouse-keeper-plum-92"


async def generate(user, kind, data):
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(reverse("codegen:create", args=[kind]), data)
    return response


async def finished(creation_id, timeout=10):
    deadline = asyncio.get_running_loop().time() + timeout
    while runs.running(answers.run_key(creation_id)):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    return await Creation.objects.aget(pk=creation_id)


async def latest_creation(user):
    return await Creation.objects.filter(user=user).order_by("-pk").afirst()


async def rows():
    await asyncio.to_thread(recorder.flush)
    return [g async for g in Generation.objects.order_by("created_at", "pk")]


@pytest.mark.parametrize(
    ("complexity", "model"), [("simple", "gpt-4o-mini"), ("advanced", "gpt-4o")]
)
async def test_complexity_chooses_the_model(ai_settings, make_user, complexity, model):
    pro = await sync_to_async(make_user)("petra", plan="pro")
    response = await generate(pro, "code", {**CODE, "complexity": complexity})
    creation = await finished((await latest_creation(pro)).pk)
    assert response.status_code == 302
    assert response.url == reverse("codegen:creation", args=[creation.pk])
    assert creation.status == "complete" and creation.model == model
    assert '<pre><code class="language-python">' in creation.html
    [row] = await rows()
    assert row.trace_id == creation.trace_id and row.trace_id.startswith("codegen-")
    assert row.trace_id.endswith(f"-{pro.pk}")
    assert row.feature == "code-generation"
    assert row.properties == {
        "feature": "code-generation",
        "plan": "pro",
        "language": "python",
        "framework": "none",
        "complexity": complexity,
        "modelUsed": model,
        "promptLength": len(CODE["prompt"]),
    }
    assert row.estimated_input_tokens > 0 and row.input_tokens > 0
    assert row.estimate_ratio == row.input_tokens / row.estimated_input_tokens


async def test_the_same_request_is_answered_from_the_cache_for_its_author_only(
    ai_settings, user, make_user, demo_provider_server
):
    calls = demo_provider_server.app.requests_seen
    first = await finished(
        (await generate(user, "code", CODE)) and (await latest_creation(user)).pk
    )
    await generate(user, "code", CODE)
    second = await finished((await latest_creation(user)).pk)
    assert not first.from_cache and second.from_cache
    assert second.content == first.content
    assert demo_provider_server.app.requests_seen - calls == 1

    other = await sync_to_async(make_user)("otto")
    await generate(other, "code", CODE)
    theirs = await finished((await latest_creation(other)).pk)
    assert not theirs.from_cache
    assert demo_provider_server.app.requests_seen - calls == 2

    client = AsyncClient()
    await client.aforce_login(user)
    page = await client.get(reverse("codegen:creation", args=[second.pk]))
    assert 'data-testid="from-cache"' in page.content.decode()


async def test_the_cache_expires(ai_settings, user, demo_provider_server):
    ai_settings.AI_CACHE_TTLS = {"code-generation": 1}
    calls = demo_provider_server.app.requests_seen
    for _ in range(2):
        await generate(user, "code", CODE)
        await finished((await latest_creation(user)).pk)
    await asyncio.sleep(1.2)
    await generate(user, "code", CODE)
    assert not (await finished((await latest_creation(user)).pk)).from_cache
    assert demo_provider_server.app.requests_seen - calls == 2


async def test_writing_is_private_everywhere_but_the_authors_history(
    ai_settings, user, fake_posthog, caplog
):
    caplog.set_level(logging.DEBUG)
    await generate(user, "content", CONTENT)
    creation = await finished((await latest_creation(user)).pk)
    assert SECRET in creation.prompt and SECRET in creation.content  # the history keeps it
    [row] = await rows()
    assert row.feature == "content-generation" and row.privacy_mode
    assert row.input is None and row.output is None
    assert SECRET not in json.dumps(row.properties)
    assert row.properties == {
        "feature": "content-generation",
        "plan": "free",
        "contentType": "product-description",
        "tone": "playful",
        "targetLength": 120,
    }
    await asyncio.to_thread(posthog.flush)
    [event] = fake_posthog.wait_for(1, name="$ai_generation")
    assert (
        "$ai_input" not in event["properties"] and "$ai_output_choices" not in event["properties"]
    )
    assert SECRET not in json.dumps(fake_posthog.events())
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        ("code", {"prompt": "   "}, "prompt"),
        ("code", {"language": "cobol"}, "language"),
        ("code", {"prompt": "x" * 4001}, "prompt"),
        ("content", {"tone": "grumpy"}, "tone"),
        ("content", {"content_type": "poem"}, "content_type"),
        ("content", {"target_length": "5"}, "target_length"),
    ],
)
def test_bad_input_is_a_form_error(client, user, kind, changes, field):
    client.force_login(user)
    data = {**(CODE if kind == "code" else CONTENT), **changes}
    response = client.post(reverse("codegen:create", args=[kind]), data)
    assert response.status_code == 400
    assert response.context[f"{kind}_form"].errors[field]
    assert not Creation.objects.exists()


async def test_a_limit_is_shown_on_the_form_which_keeps_the_text(ai_settings, user, plans):
    free = plans["free"]
    free.daily_request_limit = 0
    await free.asave()
    response = await generate(user, "code", CODE)
    assert response.status_code == 429
    html = response.content.decode()
    assert errors.DAILY_LIMIT_REACHED.format(limit=0).replace("'", "&#x27;") in html
    assert CODE["prompt"] in html
    assert not await Creation.objects.aexists()


@pytest.fixture
def creation(user):
    return Creation.objects.create(
        user=user, kind="code", prompt="p", language="python", trace_id="codegen-1-1",
        content="print(1)",
    )  # fmt: skip


PAGES = [("get", "codegen:creation"), ("get", "codegen:download"), ("get", "codegen:delete"),
         ("post", "codegen:delete")]  # fmt: skip


@pytest.mark.parametrize(("method", "name"), PAGES)
def test_history_is_the_authors_only(client, make_user, creation, method, name):
    client.force_login(make_user("mallory"))
    assert getattr(client, method)(reverse(name, args=[creation.pk])).status_code == 404
    client.logout()
    response = getattr(client, method)(reverse(name, args=[creation.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response.url
    assert Creation.objects.filter(pk=creation.pk).exists()


def test_history_list_download_and_delete(client, user, make_user, creation):
    Creation.objects.create(user=make_user("mallory"), kind="code", prompt="theirs", trace_id="t")
    client.force_login(user)
    assert list(client.get(reverse("codegen:index")).context["history"]) == [creation]
    download = client.get(reverse("codegen:download", args=[creation.pk]))
    assert download.content == b"print(1)"
    assert (
        download["Content-Disposition"] == f'attachment; filename="iridium-code-{creation.pk}.py"'
    )
    client.post(reverse("codegen:delete", args=[creation.pk]))
    assert not Creation.objects.filter(pk=creation.pk).exists()


def test_download_holds_the_code_only(client, user):
    answer = (
        "Here is the function:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
        "And a test:\n\n```python\nassert add(1, 2) == 3\n```\nHope it helps."
    )
    snippet = Creation.objects.create(
        user=user, kind="code", prompt="p", language="python", trace_id="t", content=answer
    )
    writing = Creation.objects.create(
        user=user, kind="content", prompt="p", trace_id="t", content="# Title\n\nSome **text**."
    )
    client.force_login(user)
    download = client.get(reverse("codegen:download", args=[snippet.pk]))
    code = "def add(a, b):\n    return a + b\n\nassert add(1, 2) == 3\n"
    assert download.content.decode() == code
    assert download["Content-Disposition"].endswith(f'iridium-code-{snippet.pk}.py"')
    download = client.get(reverse("codegen:download", args=[writing.pk]))
    assert download.content.decode() == "# Title\n\nSome **text**."
    assert download["Content-Disposition"].endswith(f'iridium-content-{writing.pk}.md"')
