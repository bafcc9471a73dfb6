"""Generating code and content through iridium.ai, streamed to the creation's page."""

import time
from datetime import timedelta

from asgiref.sync import sync_to_async

from iridium import ai
from iridium.core import streams
from iridium.core.answering import write_answer

from .models import Creation

CODE_SYSTEM = (
    "You are an expert {language} developer{framework}. Answer with one fenced ```{language} "
    "code block that does what is asked, with brief comments where they help, then at most "
    "three sentences on how to use it."
)
CONTENT_SYSTEM = (
    "You are a skilled writer. Write a {content_type} in a {tone} tone, about {length} words "
    "long, in Markdown. Write only the piece itself."
)


INTERRUPTED_AFTER = timedelta(seconds=15)
INTERRUPTED = "The generation was interrupted. Retry to run it again."


def run_key(creation_id: int) -> str:
    return f"creation-{creation_id}"


def group_for(creation_id: int) -> str:
    return f"creation-{creation_id}"


def new_trace_id(user_id: int) -> str:
    return f"codegen-{int(time.time() * 1000)}-{user_id}"


def _ask(creation: Creation, plan_slug: str) -> dict:
    if creation.kind == Creation.Kind.CODE:
        system = CODE_SYSTEM.format(
            language=creation.language,
            framework=f" using {creation.framework}" if creation.framework else "",
        )
        return {
            "feature": "code-generation",
            "complexity": creation.complexity,
            "cache": True,  # the same request by the same user is answered from the cache
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": creation.prompt},
            ],
            "properties": {
                "language": creation.language,
                "framework": creation.framework or "none",
                "complexity": creation.complexity,
                "modelUsed": ai.CHOSEN_MODEL,
                "promptLength": len(creation.prompt),
            },
        }
    system = CONTENT_SYSTEM.format(
        content_type=creation.get_content_type_display().lower(),
        tone=creation.tone,
        length=creation.target_length,
    )
    return {
        "feature": "content-generation",  # always in privacy mode (AI_PRIVATE_FEATURES)
        "privacy": True,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": creation.prompt},
        ],
        "properties": {
            "contentType": creation.content_type,
            "tone": creation.tone,
            "targetLength": creation.target_length,
            "userPlan": plan_slug,
        },
    }


async def start(creation: Creation, user) -> streams.Run | None:
    """Start writing the creation unless it is already being written here."""
    if streams.running(run_key(creation.pk)):
        return None
    plan_slug = await sync_to_async(lambda: user.effective_plan.slug)()
    run = streams.Run(
        key=run_key(creation.pk), group=group_for(creation.pk), message_id=creation.pk
    )

    async def on_refused(refusal):
        await creation.adelete()
        return {}

    async def produce(run):
        ask = _ask(creation, plan_slug)
        await write_answer(
            run,
            creation,
            ask={"user": user, "trace_id": creation.trace_id, **ask},
            on_refused=on_refused,
        )

    return streams.start(run, produce)
