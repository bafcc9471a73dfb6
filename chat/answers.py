"""Writing the assistant's answer in a conversation: the user's message is saved, an answer is
streamed to every tab (iridium.live), and saved when it ends however it ends (complete,
stopped, failed). A refused request (limit, budget, kill switch) leaves nothing behind, so the
page can give the person their text back."""

from contextlib import contextmanager

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from iridium import ai
from iridium.infra.db import on_kept_connection_async
from iridium.infra.errors import Busy, DomainError
from iridium.live import fanout, protocol, runs, writer
from iridium.live.consumers import Target
from iridium.live.models import INTERRUPTED_AFTER
from iridium.live.rendering import message_html

from .models import Conversation, Message
from .tools import CHAT_TOOLS

TARGET = Target(prefix="chat", noun="conversation")
SYSTEM_PROMPT = (
    "You are Iridium's assistant. Answer clearly and briefly, in Markdown. Search the knowledge "
    "base for how-to questions, and file a support ticket when the person asks for a human or "
    "the problem needs staff."
)
HISTORY_MESSAGES = 40  # the most recent messages sent to the model

BUSY = "An answer is still being written in this conversation. Stop it or wait for it."
NOTHING_TO_REGENERATE = "There is no answer to regenerate yet."


class NothingToRegenerate(DomainError):
    code = "nothing_to_regenerate"
    http_status = 409


def run_key(conversation_id: int) -> str:
    return TARGET.key(conversation_id)


# --- Starting answers -------------------------------------------------------------------------


async def send(*, conversation: Conversation, user, content: str, client_id: str = "") -> None:
    """Save `content` as the user's message and start the answer. Raises Busy (with the text
    given back) while an answer is being written."""
    question, answer = await sync_to_async(_save_question)(conversation, content)
    await fanout.group_send(
        run_key(conversation.pk),
        {
            "type": protocol.USER_MESSAGE,
            "message": question.frame(),
            "html": message_html(question),
            "title": conversation.title,
        },
    )
    _start(conversation, user, answer, question=question, client_id=client_id)


async def regenerate(*, conversation: Conversation, user) -> None:
    """A new answer to the last question (the last answer, if any, is replaced)."""
    answer = await sync_to_async(_replace_last_answer)(conversation)
    _start(conversation, user, answer, question=None, client_id="")


def _start(conversation, user, answer, *, question, client_id):
    replay_session_id = ai.replay.current()  # of the frame that starts it

    async def ask():
        messages = await on_kept_connection_async(_history, conversation, answer)
        return ai.Request(
            user=user,
            feature="chat",
            messages=messages,
            trace_id=answer.trace_id,
            ai_session_id=conversation.ai_session_id,
            properties={
                "conversationId": conversation.pk,
                "messageCount": len(messages) - 1,
                "hasTools": True,
            },
            tools=CHAT_TOOLS,
            replay_session_id=replay_session_id,
        )

    async def on_refused(refusal):
        question_id = question.pk if question else None
        title = await sync_to_async(_forget)(conversation, answer, question)
        return {
            "text": question.content if question else "",
            "client_id": client_id,
            "question_id": question_id,
            "title": title,
        }

    writer.start(run_key(conversation.pk), answer, ask=ask, on_refused=on_refused)


def _save_question(conversation: Conversation, content: str):
    with _one_answer_at_a_time(text=content), transaction.atomic():
        _check_not_busy(conversation, text=content)
        question = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=content.strip()
        )
        answer = _new_answer(conversation)
        if conversation.title == Conversation._meta.get_field("title").default:
            conversation.title = _title_from(content)
        conversation.save(update_fields=["title", "updated_at"])
    return question, answer


def _replace_last_answer(conversation: Conversation) -> Message:
    with _one_answer_at_a_time(), transaction.atomic():
        _check_not_busy(conversation)
        last = conversation.messages.order_by("-created_at", "-pk").first()
        if last is None:
            raise NothingToRegenerate(NOTHING_TO_REGENERATE)
        if last.role == Message.Role.ASSISTANT:
            last.delete()
        answer = _new_answer(conversation)
        conversation.save(update_fields=["updated_at"])
    return answer


def _new_answer(conversation: Conversation) -> Message:
    return Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING
    )


@contextmanager
def _one_answer_at_a_time(**given_back):
    """Two workers taking a "send" at once both find the conversation free; the database lets
    one of them write its answer (one_answer_being_written_per_conversation), the other is busy."""
    try:
        yield
    except IntegrityError as error:
        if "one_answer_being_written" not in str(error):
            raise
        raise Busy(BUSY, **given_back) from error


def _check_not_busy(conversation: Conversation, **given_back) -> None:
    if runs.running(run_key(conversation.pk)):
        raise Busy(BUSY, **given_back)
    streaming = conversation.messages.filter(status=Message.Status.STREAMING)
    if streaming.filter(updated_at__gte=timezone.now() - INTERRUPTED_AFTER).exists():
        raise Busy(BUSY, **given_back)  # being written by another worker
    streaming.update(status=Message.Status.ERROR, error=Message.INTERRUPTED)


def mark_interrupted(conversation: Conversation) -> None:
    """Answers left "being written" by a worker that stopped become failed ones (with Retry)."""
    Message.mark_interrupted(conversation.messages.all(), key=run_key(conversation.pk))


def _title_from(content: str) -> str:
    first_line = content.strip().splitlines()[0]
    return first_line[:60] + ("…" if len(first_line) > 60 else "")


def _history(conversation: Conversation, answer: Message) -> list[dict]:
    earlier = conversation.messages.exclude(pk=answer.pk).exclude(content="")
    recent = list(earlier.order_by("-created_at", "-pk")[:HISTORY_MESSAGES])[::-1]
    return [{"role": "system", "content": SYSTEM_PROMPT}] + [
        {"role": m.role, "content": m.content} for m in recent
    ]


def _forget(conversation: Conversation, answer: Message, question: Message | None) -> str:
    """Remove what a refused request left; a title taken from the refused question goes too.
    Returns the conversation's title."""
    answer.delete()
    if question is not None:
        question.delete()
        default = Conversation._meta.get_field("title").default
        named_by_it = conversation.title == _title_from(question.content)
        if named_by_it and not conversation.messages.exists():
            conversation.title = default
            conversation.save(update_fields=["title", "updated_at"])
    return conversation.title
