"""Versions of a conversation's turns: Regenerate keeps the answer it replaces as an earlier
version of its turn (the page flips between them: < 1/2 >), editing a question keeps the
question and everything after it as replaced (not shown). The latest version of each turn is
what the page shows first and what the model is sent (chat.answers' history)."""

from django.db.models import Q

from .models import Message

SHOWN = (Message.Version.LATEST, Message.Version.EARLIER)


def with_versions(conversation, latest: list[Message]) -> list[Message]:
    """`latest` (a page of latest messages, oldest first) with the earlier versions of their
    answers before each, and each answer's `version_number` and `version_count` set."""
    turns = {m.turn for m in latest if m.is_answer}
    earlier = []
    if turns:
        earlier = conversation.messages.filter(
            Q(pk__in=turns) | Q(version_of__in=turns),
            version=Message.Version.EARLIER,
            role=Message.Role.ASSISTANT,
        )
    by_turn: dict[int, list[Message]] = {}
    for message in earlier:
        by_turn.setdefault(message.turn, []).append(message)
    shown = []
    for message in latest:
        if message.is_answer:
            versions = sorted(by_turn.get(message.turn, []), key=lambda m: (m.created_at, m.pk))
            versions.append(message)
            number_versions(versions)
            shown.extend(versions)
        else:
            shown.append(message)
    return shown


def number_versions(versions: list[Message]) -> list[Message]:
    """Set each of a turn's versions (oldest first) its number and the count."""
    for number, version in enumerate(versions, start=1):
        version.version_number = number
        version.version_count = len(versions)
    return versions


def versions_of(answer: Message) -> list[Message]:
    """The answer's turn, oldest first, numbered (the answer itself included)."""
    found = Message.objects.filter(
        Q(pk=answer.turn) | Q(version_of=answer.turn),
        conversation_id=answer.conversation_id,
        role=Message.Role.ASSISTANT,
        version__in=SHOWN,
    )
    return number_versions(list(found.order_by("created_at", "pk")))
