from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import answers
from .models import Conversation

TITLE_REQUIRED = "A conversation needs a title."


def _get_conversation_for_user(request, pk) -> Conversation:
    """The signed-in user's conversation, or 404: other people's conversations do not exist."""
    conversation = get_object_or_404(Conversation, pk=pk)
    if conversation.user_id != request.user.pk:
        raise Http404
    return conversation


@login_required
def index(request):
    query = request.GET.get("q", "").strip()[:200]
    conversations = Conversation.objects.filter(user=request.user)
    if query:
        conversations = conversations.filter(
            Q(title__icontains=query) | Q(messages__content__icontains=query)
        ).distinct()
    return render(
        request, "chat/index.html", {"conversations": conversations[:200], "query": query}
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
            "recent": Conversation.objects.filter(user=request.user)[:30],
            **extra,
        },
        status=status,
    )


@login_required
def conversation(request, pk):
    conversation = _get_conversation_for_user(request, pk)
    answers.mark_interrupted(conversation)
    return _conversation_page(request, conversation)


@login_required
@require_POST
def rename(request, pk):
    conversation = _get_conversation_for_user(request, pk)
    title = request.POST.get("title", "").strip()[:120]
    if not title:
        return _conversation_page(request, conversation, status=400, rename_error=TITLE_REQUIRED)
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return redirect("chat:conversation", pk=conversation.pk)


@login_required
def delete(request, pk):
    conversation = _get_conversation_for_user(request, pk)
    if request.method == "POST":
        conversation.delete()
        return redirect("chat:index")
    return render(request, "chat/confirm_delete.html", {"conversation": conversation})
