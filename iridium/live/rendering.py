"""How messages look, rendered once on the server: an answer's Markdown (markdown-it-py,
pygments, nh3: iridium.infra.markdown), and the message fragments that the pages include and the
frames carry, from one template (live/_message.html; the notes of tools it uses are
iridium.live.tool_notes')."""

from dataclasses import dataclass

from django.template.loader import render_to_string

from iridium.infra.markdown import render as render_markdown

from .models import StreamedAnswer

__all__ = ["PageMessage", "attach_feedback", "message_html", "render_markdown"]


@dataclass
class PageMessage:
    """A message no table holds (the public demo's conversation lives in its page only), shown
    by the one template as saved messages are, without the actions that need a saved one
    (Retry, Copy answer, feedback, versions, edit): a person's question or an answer."""

    pk: int
    is_answer: bool
    content: str = ""
    html: str = ""  # an answer's Markdown, rendered
    status: str = StreamedAnswer.Status.COMPLETE
    error: str = ""

    Status = StreamedAnswer.Status
    offers_actions = False
    can_be_edited = False
    model = ""
    author_kind = ""
    author_username = ""
    tool_events = ()

    @property
    def author_label(self) -> str:
        return StreamedAnswer.ASSISTANT if self.is_answer else StreamedAnswer.YOU


def message_html(message: StreamedAnswer | PageMessage) -> str:
    """The message's `<li>`, as the page shows it (without a viewer: people's own messages are
    labelled "You" by the page's script, which knows who is looking)."""
    return render_to_string("live/_message.html", {"message": message})


def attach_feedback(user, messages) -> list:
    """`messages` with `user`'s feedback on each answer as `.feedback` (or None), for the
    template's thumbs."""
    from iridium.ai.feedback import ratings_of

    messages = list(messages)
    answers = [m for m in messages if m.is_answer and m.pk]
    given = ratings_of(user, [m.trace_id for m in answers])
    for message in answers:
        message.feedback = given.get(message.trace_id)
    return messages
