"""Writing the assistant's answer in a conversation: the user's message is saved, an answer is
streamed to every tab (iridium.live), and saved when it ends however it ends (complete,
stopped, failed). A refused request (limit, budget, kill switch) leaves nothing behind, so the
page can give the person their text back.

Nothing is deleted to make room for a new answer (chat.versions): Regenerate keeps the answer
it replaces as an earlier version of its turn (a failed one as replaced), and editing a question
keeps the question and everything after it as replaced. A refused request puts them back."""

from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db.models import Q

from iridium import ai
from iridium.infra.errors import Busy, DomainError
from iridium.live import fanout, protocol, runs, writer
from iridium.live.consumers import Target
from iridium.live.models import AnswerBeingWritten
from iridium.live.rendering import message_html

from .models import Conversation, Message
from .tools import CHAT_TOOLS
from .versions import SHOWN, versions_of, with_versions

TARGET = Target(prefix="chat", noun="conversation")
SYSTEM_PROMPT = (
    "You are Iridium's assistant. Answer clearly and briefly, in Markdown. Search the knowledge "
    "base for how-to questions, and file a support ticket when the person asks for a human or "
    "the problem needs staff."
)
HISTORY_MESSAGES = 40  # the most recent messages sent to the model

BUSY = "An answer is still being written in this conversation. Stop it or wait for it."
NOTHING_TO_REGENERATE = "There is no answer to regenerate yet."
NOTHING_TO_EDIT = "That message can no longer be edited. Reload the page to see the latest."

# What a new answer set aside (message id, its version before): put back if it is refused.
PutAside = list[tuple[int, str]]


class NothingToRegenerate(DomainError):
    code = "nothing_to_regenerate"
    http_status = 409


class NothingToEdit(DomainError):
    code = "nothing_to_edit"
    http_status = 409


def run_key(conversation_id: int) -> str:
    return TARGET.key(conversation_id)


# --- Starting answers -------------------------------------------------------------------------


@dataclass
class Start:
    """A new answer saved "being written", with what went with it: the question (unless it
    is regenerated), the history the model is sent and what was set aside (put back if the
    request is refused). The messages' HTML is rendered in the thread that saved them, never
    on the event loop, where it would hold up other answers' tokens."""

    answer: Message
    history: list[dict]
    question: Message | None = None
    put_aside: PutAside = field(default_factory=list)
    answer_html: str = ""
    question_html: str = ""


async def send(*, conversation: Conversation, user, content: str, client_id: str = "") -> None:
    """Save `content` as the user's message and start the answer. Raises Busy (with the text
    given back) while an answer is being written."""
    runs.refuse_if_draining()
    start = await sync_to_async(_save_question)(conversation, content)
    await fanout.group_send(
        run_key(conversation.pk),
        {
            "type": protocol.USER_MESSAGE,
            "message": start.question.frame(),
            "html": start.question_html,
            "title": conversation.title,
        },
    )
    _start(conversation, user, start, client_id=client_id)


async def regenerate(*, conversation: Conversation, user) -> None:
    """A new answer to the last question: the last answer, if any, becomes an earlier version
    of the turn (a failed one is replaced)."""
    runs.refuse_if_draining()
    start = await sync_to_async(_replace_last_answer)(conversation)
    _start(conversation, user, start, client_id="")


async def edit(
    *, conversation: Conversation, user, message_id: int, content: str, client_id: str = ""
) -> None:
    """Replace the person's question `message_id` with `content`, and what followed it with a
    new answer. Raises Busy (with the text given back) while an answer is being written."""
    runs.refuse_if_draining()
    start = await sync_to_async(_edit_question)(conversation, message_id, content)
    await fanout.group_send(
        run_key(conversation.pk),
        {
            "type": protocol.USER_MESSAGE,
            "message": start.question.frame(),
            "html": start.question_html,
            "replaces": message_id,
        },
    )
    _start(conversation, user, start, client_id=client_id, edited_id=message_id)


def _start(conversation, user, start: Start, *, client_id, edited_id=None):
    replay_session_id = ai.replay.current()  # of the frame that starts it
    answer, question, messages = start.answer, start.question, start.history

    async def ask():
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
        title, restored = await sync_to_async(_forget)(
            conversation, answer, question, start.put_aside
        )
        refused = {
            "text": question.content if question else "",
            "client_id": client_id,
            "question_id": question_id,
            "title": title,
            "restored": restored,
        }
        if edited_id is not None:
            refused["edited_id"] = edited_id
        return refused

    writer.start(
        run_key(conversation.pk),
        answer,
        html=start.answer_html,
        ask=ask,
        on_refused=on_refused,
    )


def _save_question(conversation: Conversation, content: str) -> Start:
    def write():
        question = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=content.strip()
        )
        answer = _new_answer(conversation)
        if conversation.title == Conversation._meta.get_field("title").default:
            conversation.title = _title_from(content)
        conversation.save(update_fields=["title", "updated_at"])
        return Start(answer, _history(conversation, answer), question=question)

    return _one_answer_at_a_time(conversation, write, text=content)


def _replace_last_answer(conversation: Conversation) -> Start:
    def write():
        latest = conversation.messages.filter(version=Message.Version.LATEST)
        last = latest.order_by("-created_at", "-pk").first()
        if last is None:
            raise NothingToRegenerate(NOTHING_TO_REGENERATE)
        turn, put_aside, replaced = None, [], []
        if last.is_answer:
            turn = last.turn
            put_aside.append((last.pk, last.version))
            # An answer worth reading again is kept as a version; a failed one is replaced.
            worth_keeping = last.content and last.status != Message.Status.ERROR
            if not worth_keeping:
                replaced.append(last.pk)
            last.version = Message.Version.EARLIER if worth_keeping else Message.Version.REPLACED
            Message.objects.filter(pk=last.pk).update(version=last.version)
        answer = _new_answer(conversation, version_of=turn)
        answer.replaced_ids = replaced
        conversation.save(update_fields=["updated_at"])
        return Start(answer, _history(conversation, answer), put_aside=put_aside)

    return _one_answer_at_a_time(conversation, write)


def _edit_question(conversation: Conversation, message_id: int, content: str) -> Start:
    def write():
        old = conversation.messages.filter(
            pk=message_id, role=Message.Role.USER, version=Message.Version.LATEST
        ).first()
        if old is None:
            raise NothingToEdit(NOTHING_TO_EDIT, text=content)
        from_it_on = conversation.messages.filter(version__in=SHOWN).filter(
            Q(created_at__gt=old.created_at) | Q(created_at=old.created_at, pk__gte=old.pk)
        )
        put_aside = list(from_it_on.values_list("pk", "version"))
        from_it_on.update(version=Message.Version.REPLACED)
        question = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=content.strip(),
            version_of_id=old.turn,
        )
        answer = _new_answer(conversation)
        conversation.save(update_fields=["updated_at"])
        return Start(answer, _history(conversation, answer), question=question, put_aside=put_aside)

    return _one_answer_at_a_time(conversation, write, text=content)


def _new_answer(conversation: Conversation, version_of: int | None = None) -> Message:
    answer = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        version_of_id=version_of,
    )
    if version_of is not None:  # the page shows it as the newest of its turn's versions
        answer.version_number = answer.version_count = len(versions_of(answer))
    return answer


def _one_answer_at_a_time(conversation: Conversation, write, **given_back) -> Start:
    """Run `write()`, which saves a new answer "being written" (and whatever goes with it), in
    one transaction (StreamedAnswer.start_one_at_a_time), then render its messages. Busy (with
    `given_back`) while another answer is being written, by this worker or by another."""
    if runs.running(run_key(conversation.pk)):
        raise Busy(BUSY, **given_back)
    try:
        start = Message.start_one_at_a_time(
            write, conversation.messages.all(), key=run_key(conversation.pk)
        )
    except AnswerBeingWritten as error:
        raise Busy(BUSY, **given_back) from error
    start.answer_html = message_html(start.answer)
    if start.question is not None:
        start.question_html = message_html(start.question)
    return start


def mark_interrupted(conversation: Conversation) -> int:
    """Answers left "being written" by a worker that stopped become failed ones (with Retry);
    how many there were."""
    return Message.mark_interrupted(conversation.messages.all(), key=run_key(conversation.pk))


def _title_from(content: str) -> str:
    first_line = content.strip().splitlines()[0]
    return first_line[:60] + ("…" if len(first_line) > 60 else "")


def _history(conversation: Conversation, answer: Message) -> list[dict]:
    """What the model is sent: the latest version of each turn, never earlier or replaced ones."""
    earlier = conversation.messages.filter(version=Message.Version.LATEST)
    earlier = earlier.exclude(pk=answer.pk).exclude(content="")
    recent = list(earlier.order_by("-created_at", "-pk")[:HISTORY_MESSAGES])[::-1]
    return [{"role": "system", "content": SYSTEM_PROMPT}] + [
        {"role": m.role, "content": m.content} for m in recent
    ]


def _forget(
    conversation: Conversation, answer: Message, question: Message | None, put_aside: PutAside
) -> tuple[str, list[str]]:
    """Remove what a refused request left and put back what it had set aside; a title taken
    from the refused question goes too. Returns the conversation's title and the HTML of the
    messages put back (as the page shows them, with their turns' earlier versions)."""
    answer.delete()
    for version in {version for _, version in put_aside}:
        ids = [pk for pk, was in put_aside if was == version]
        Message.objects.filter(pk__in=ids).update(version=version)
    back = [pk for pk, was in put_aside if was == Message.Version.LATEST]
    restored = with_versions(
        conversation, list(conversation.messages.filter(pk__in=back).order_by("created_at", "pk"))
    )
    restored = [message_html(message) for message in restored]
    if question is not None:
        question.delete()
        default = Conversation._meta.get_field("title").default
        named_by_it = conversation.title == _title_from(question.content)
        if named_by_it and not conversation.messages.exists():
            conversation.title = default
            conversation.save(update_fields=["title", "updated_at"])
    return conversation.title, restored
