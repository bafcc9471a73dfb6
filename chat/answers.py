"""Writing the assistant's answer in a conversation: the user's message is saved, an answer is
streamed to every tab through iridium.core.streams, and saved when it ends however it ends
(complete, stopped, failed). A refused request (limit, budget, kill switch) leaves nothing behind,
so the page can give the person their text back."""

from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from iridium.core import streams
from iridium.core.answering import write_answer

from .models import Conversation, Message
from .tools import CHAT_TOOLS

SYSTEM_PROMPT = (
    "You are Iridium's assistant. Answer clearly and briefly, in Markdown. Search the knowledge "
    "base for how-to questions, and file a support ticket when the person asks for a human or "
    "the problem needs staff."
)
HISTORY_MESSAGES = 40  # the most recent messages sent to the model
# A message still "being written" whose run has not been heard of for this long was interrupted
# (its worker stopped); it is marked failed so that it can be retried.
INTERRUPTED_AFTER = timedelta(seconds=15)

BUSY = "An answer is still being written in this conversation. Stop it or wait for it."
NOTHING_TO_REGENERATE = "There is no answer to regenerate yet."
EMPTY = "Type a message first."
INTERRUPTED = "The answer was interrupted. Retry to get a new one."


class ChatError(Exception):
    """A request the conversation cannot take now; the message is for the person."""


def run_key(conversation_id: int) -> str:
    return f"chat-{conversation_id}"


def group_for(conversation_id: int) -> str:
    return f"chat-{conversation_id}"


# --- Starting answers -------------------------------------------------------------------------


async def send(*, conversation: Conversation, user, content: str, client_id: str = "") -> None:
    user_message, answer = await sync_to_async(_save_question)(conversation, content)
    await streams.group_send(
        group_for(conversation.pk),
        {
            "type": "user_message",
            "message": user_message.frame(),
            "title": conversation.title,
        },
    )
    _start(conversation, user, answer, question=user_message, client_id=client_id)


async def regenerate(*, conversation: Conversation, user) -> None:
    answer = await sync_to_async(_replace_last_answer)(conversation)
    _start(conversation, user, answer, question=None, client_id="")


def _start(conversation, user, answer, *, question, client_id):
    run = streams.Run(
        key=run_key(conversation.pk), group=group_for(conversation.pk), message_id=answer.pk
    )

    async def produce(run):
        await _write_answer(run, conversation, user, answer, question, client_id)

    streams.start(run, produce)


@transaction.atomic
def _save_question(conversation: Conversation, content: str):
    content = content.strip()
    if not content:
        raise ChatError(EMPTY)
    _check_not_busy(conversation)
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=content
    )
    answer = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING
    )
    if conversation.title == Conversation._meta.get_field("title").default:
        conversation.title = _title_from(content)
    conversation.save(update_fields=["title", "updated_at"])
    return question, answer


@transaction.atomic
def _replace_last_answer(conversation: Conversation) -> Message:
    _check_not_busy(conversation)
    last = conversation.messages.order_by("-created_at", "-pk").first()
    if last is None:
        raise ChatError(NOTHING_TO_REGENERATE)
    if last.role == Message.Role.ASSISTANT:
        last.delete()
    answer = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING
    )
    conversation.save(update_fields=["updated_at"])
    return answer


def _check_not_busy(conversation: Conversation) -> None:
    if streams.running(run_key(conversation.pk)):
        raise ChatError(BUSY)
    streaming = conversation.messages.filter(status=Message.Status.STREAMING)
    if streaming.filter(updated_at__gte=timezone.now() - INTERRUPTED_AFTER).exists():
        raise ChatError(BUSY)  # being written by another worker
    streaming.update(status=Message.Status.ERROR, error=INTERRUPTED)


def mark_interrupted(conversation: Conversation) -> None:
    """Answers left "being written" by a worker that stopped become failed ones (with Retry)."""
    if streams.running(run_key(conversation.pk)):
        return
    conversation.messages.filter(
        status=Message.Status.STREAMING, updated_at__lt=timezone.now() - INTERRUPTED_AFTER
    ).update(status=Message.Status.ERROR, error=INTERRUPTED)


def _title_from(content: str) -> str:
    first_line = content.strip().splitlines()[0]
    return first_line[:60] + ("…" if len(first_line) > 60 else "")


# --- The answer itself ------------------------------------------------------------------------


def _history(conversation: Conversation, answer: Message) -> list[dict]:
    earlier = conversation.messages.exclude(pk=answer.pk).exclude(content="")
    recent = list(earlier.order_by("-created_at", "-pk")[:HISTORY_MESSAGES])[::-1]
    return [{"role": "system", "content": SYSTEM_PROMPT}] + [
        {"role": m.role, "content": m.content} for m in recent
    ]


async def _write_answer(run, conversation, user, answer, question, client_id):
    messages = await sync_to_async(_history)(conversation, answer)
    plan = await sync_to_async(lambda: user.effective_plan.slug)()

    async def on_refused(refusal):
        await sync_to_async(_forget)(answer, question)
        return {
            "text": question.content if question else "",
            "client_id": client_id,
            "question_id": question.pk if question else None,
        }

    await write_answer(
        run,
        answer,
        ask={
            "user": user,
            "feature": "chat",
            "messages": messages,
            "trace_id": conversation.trace_id,
            "properties": {
                "conversationId": conversation.pk,
                "messageCount": len(messages) - 1,
                "hasTools": True,
                "userPlan": plan,
            },
            "tools": CHAT_TOOLS,
        },
        on_refused=on_refused,
    )


def _forget(answer: Message, question: Message | None) -> None:
    answer.delete()
    if question is not None:
        question.delete()
