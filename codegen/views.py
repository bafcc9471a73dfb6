from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import answers
from .forms import CodeForm, ContentForm
from .models import Creation

FORMS = {Creation.Kind.CODE: CodeForm, Creation.Kind.CONTENT: ContentForm}


def _get_creation_for_user(request, pk) -> Creation:
    """The user's own creation, or 404: nobody else's history exists for them."""
    creation = get_object_or_404(Creation, pk=pk)
    if creation.user_id != request.user.pk:
        raise Http404
    return creation


def _page(request, *, code_form=None, content_form=None, status=200):
    return render(
        request,
        "codegen/index.html",
        {
            "code_form": code_form or CodeForm(),
            "content_form": content_form or ContentForm(),
            "history": Creation.objects.filter(user=request.user)[:50],
        },
        status=status,
    )


@login_required
def index(request):
    return _page(request)


@login_required
@require_POST
async def create(request, kind):
    """Start a generation; a refusal (limit, budget, kill switch) is shown on the form, which
    keeps what was typed. Otherwise the result's page shows it streaming in."""
    if kind not in FORMS:
        raise Http404
    user = await request.auser()
    form = FORMS[kind](request.POST)
    forms = {"code_form": None, "content_form": None, f"{kind}_form": form}
    if not await sync_to_async(form.is_valid)():
        return await sync_to_async(_page)(request, **forms, status=400)
    creation = await Creation.objects.acreate(
        user=user,
        kind=kind,
        trace_id=answers.new_trace_id(user.pk),
        status=Creation.Status.STREAMING,
        **form.cleaned_data,
    )
    run = await answers.start(creation, user)
    first = await run.wait_for_output(timeout=settings.AI_DEADLINE_SECONDS)
    if first is not None and first["type"] == "refused":
        await sync_to_async(form.add_error)(None, first["message"])
        return await sync_to_async(_page)(request, **forms, status=429)
    return redirect("codegen:creation", pk=creation.pk)


@login_required
def creation(request, pk):
    found = _get_creation_for_user(request, pk)
    return render(request, "codegen/creation.html", {"creation": found, "message": found})


@login_required
def download(request, pk):
    found = _get_creation_for_user(request, pk)
    response = HttpResponse(found.content, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{found.download_name}"'
    return response


@login_required
def delete(request, pk):
    found = _get_creation_for_user(request, pk)
    if request.method == "POST":
        found.delete()
        return redirect("codegen:index")
    return render(request, "codegen/confirm_delete.html", {"creation": found})
