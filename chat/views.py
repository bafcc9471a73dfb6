from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from iridium.infra.text import TextRejected, check_text, query_text
from iridium.live.rendering import attach_feedback

from . import access, answers, listing
from .models import Conversation, Message
from .versions import with_versions

TITLE_REQUIRED = "A conversation needs a title."
# Messages a conversation page shows at first; earlier ones come a page at a time on request.
PAGE_MESSAGES = 50


@login_required
def index(request):
    query = query_text(request)
    conversations = access.conversations_for(request.user)
    if query:
        conversations = conversations.filter(
            Q(title__icontains=query)
            | Q(messages__content__icontains=query, messages__version__in=listing.SEARCHED)
        ).distinct()
        shown = listing.with_snippets(conversations[:200], query)
    else:
        shown = list(conversations[:200])
    return render(
        request,
        "chat/index.html",
        {"conversations": shown, "groups": listing.by_date(shown), "query": query},
    )


@login_required
@require_POST
def new(request):
    conversation = Conversation.objects.create(user=request.user)
    return redirect("chat:conversation", pk=conversation.pk)


def _latest(conversation, *, before: int | None = None):
    """A page of the conversation's messages, oldest first, ending with the latest (or with the
    one before `before`), with the earlier versions of its answers (chat.versions; a page counts
    the latest versions only, so that a turn's versions are never split between pages), whether
    there are earlier ones, and the cursor of the page before."""
    messages = conversation.messages.filter(version=Message.Version.LATEST)
    messages = messages.order_by("-created_at", "-pk")
    if before is not None:
        messages = messages.filter(pk__lt=before)
    page = list(messages[: PAGE_MESSAGES + 1])
    latest = page[:PAGE_MESSAGES][::-1]
    more = len(page) > PAGE_MESSAGES
    return with_versions(conversation, latest), (latest[0].pk if more else None)


def _conversation_page(request, conversation, *, status=200, **extra):
    shown, cursor = _latest(conversation)
    shown = attach_feedback(request.user, shown)
    return render(
        request,
        "chat/conversation.html",
        {
            "conversation": conversation,
            "chat_messages": shown,
            "earlier": cursor,
            "recent": listing.by_date(access.conversations_for(request.user)[:30]),
            "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
            **extra,
        },
        status=status,
    )


@login_required
def conversation(request, pk):
    conversation = access.get_conversation(request.user, pk)
    answers.mark_interrupted(conversation)
    return _conversation_page(request, conversation)


@login_required
@require_POST
def rename(request, pk):
    conversation = access.get_conversation(request.user, pk)
    title = request.POST.get("title", "").strip()[:120]
    if not title:
        return _conversation_page(request, conversation, status=400, rename_error=TITLE_REQUIRED)
    try:
        check_text(title)
    except TextRejected as error:
        return _conversation_page(request, conversation, status=400, rename_error=error.message)
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return redirect("chat:conversation", pk=conversation.pk)


@login_required
def delete(request, pk):
    conversation = access.get_conversation(request.user, pk)
    if request.method == "POST":
        conversation.delete()
        return redirect("chat:index")
    return render(request, "chat/confirm_delete.html", {"conversation": conversation})


@login_required
def earlier(request, pk):
    """The page of messages before message `before`, rendered, and the next cursor (or null)."""
    conversation = access.get_conversation(request.user, pk)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return JsonResponse({"error": "before must be a message id"}, status=400)
    shown, cursor = _latest(conversation, before=before)
    shown = attach_feedback(request.user, shown)
    html = render_to_string("chat/_messages.html", {"chat_messages": shown}, request=request)
    return JsonResponse({"html": html, "before": cursor})
