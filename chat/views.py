from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from iridium.infra.text import TextRejected, check_text, query_text

from . import access, answers, listing
from .models import Conversation

TITLE_REQUIRED = "A conversation needs a title."


@login_required
def index(request):
    query = query_text(request)
    conversations = access.conversations_for(request.user)
    if query:
        conversations = conversations.filter(
            Q(title__icontains=query) | Q(messages__content__icontains=query)
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


def _conversation_page(request, conversation, *, status=200, **extra):
    return render(
        request,
        "chat/conversation.html",
        {
            "conversation": conversation,
            "chat_messages": conversation.messages.all(),
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
