"""Generating code and content through iridium.ai, streamed to the creation's page."""

import time
from dataclasses import dataclass

from django import forms

from iridium import ai
from iridium.live import runs, writer
from iridium.live.consumers import Target
from iridium.live.rendering import message_html

from .models import Creation

TARGET = Target(prefix="creation", noun="creation")

CODE_SYSTEM = (
    "You are an expert {language} developer{framework}. Answer with one fenced ```{language} "
    "code block that does what is asked, with brief comments where they help, then at most "
    "three sentences on how to use it."
)
CONTENT_SYSTEM = (
    "You are a skilled writer. Write a {content_type} in a {tone} tone, about {length} words "
    "long, in Markdown. Write only the piece itself."
)


def run_key(creation_id: int) -> str:
    return TARGET.key(creation_id)


def new_trace_id(user_id: int) -> str:
    return f"codegen-{int(time.time() * 1000)}-{user_id}"


def _request(creation: Creation, user, replay_session_id: str) -> ai.Request:
    if creation.kind == Creation.Kind.CODE:
        system = CODE_SYSTEM.format(
            language=creation.language,
            framework=f" using {creation.framework}" if creation.framework else "",
        )
        return ai.Request(
            user=user,
            feature="code-generation",
            trace_id=creation.trace_id,
            complexity=creation.complexity,
            cache=True,  # the same request by the same user is answered from the cache
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": creation.prompt},
            ],
            properties={
                "language": creation.language,
                "complexity": creation.complexity,
                "modelUsed": ai.CHOSEN_MODEL,
                "promptLength": len(creation.prompt),
            },
            private_properties={"framework": creation.framework or "none"},  # typed freely
            replay_session_id=replay_session_id,
        )
    system = CONTENT_SYSTEM.format(
        content_type=creation.get_content_type_display().lower(),
        tone=creation.tone,
        length=creation.target_length,
    )
    return ai.Request(
        user=user,
        feature="content-generation",  # always in privacy mode (AI_PRIVATE_FEATURES)
        trace_id=creation.trace_id,
        privacy=True,
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": creation.prompt},
        ],
        properties={
            "contentType": creation.content_type,
            "tone": creation.tone,
            "targetLength": creation.target_length,
        },
        replay_session_id=replay_session_id,
    )


@dataclass
class Start:
    """A creation saved "being written", the form it came from, and its HTML as its page
    shows it meanwhile, rendered in the thread that saved it (not on the event loop); None for
    a new creation, whose page opens only once it has begun (`writer.start`)."""

    creation: Creation
    form: forms.Form | None = None
    html: str | None = None


def written_again(creation: Creation) -> Start | None:
    """A failed creation made ready to be written again (its Retry), in one step off the event
    loop; None unless it has failed."""
    creation.refresh_from_db()
    if creation.status != Creation.Status.ERROR:
        return None
    creation.status = Creation.Status.STREAMING
    creation.content = creation.html = creation.error = ""
    creation.save()
    return Start(creation, html=message_html(creation))


def start(start: Start, user) -> runs.Run | None:
    """Start writing the creation unless it is already being written here."""
    creation = start.creation
    if runs.running(run_key(creation.pk)):
        return None
    replay_session_id = ai.replay.current()  # of the request or frame that starts it

    async def ask():
        return _request(creation, user, replay_session_id)

    async def on_refused(refusal):
        await creation.adelete()
        return {}

    return writer.start(
        run_key(creation.pk), creation, html=start.html, ask=ask, on_refused=on_refused
    )
