from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from iridium import ai
from iridium.infra.db import give_back_connection
from iridium.live import runs
from iridium.live.rendering import attach_feedback

from . import access, answers
from .forms import CodeForm, ContentForm
from .models import Creation

FORMS = {Creation.Kind.CODE: CodeForm, Creation.Kind.CONTENT: ContentForm}


def _page(request, *, code_form=None, content_form=None, status=200):
    return render(
        request,
        "codegen/index.html",
        {
            "code_form": code_form or CodeForm(),
            "content_form": content_form or ContentForm(),
            "history": access.creations_for(request.user)[:50],
        },
        status=status,
    )


@login_required
def index(request):
    return _page(request)


@require_POST
async def create(request, kind):
    """Start a generation; a refusal (limit, budget, kill switch) is shown on the form, which
    keeps what was typed. Otherwise the result's page shows it streaming in.

    What needs the database (the session and user, the form, the new creation) is done in one
    step off the event loop (`_new_creation`); this waits for the answer's first output."""
    if kind not in FORMS:
        raise Http404
    runs.refuse_if_draining()
    made = await sync_to_async(_new_creation)(request, kind)
    if not isinstance(made, answers.Start):
        return made  # the log-in page, or the form and what is wrong with it
    run = answers.start(made, request.user)
    try:
        await run.started(timeout=settings.AI_DEADLINE_SECONDS)
    except ai.Refused as refusal:
        return await sync_to_async(_refused)(request, kind, made.form, refusal)
    return redirect("codegen:creation", pk=made.creation.pk)


@login_required
def _new_creation(request, kind) -> answers.Start | HttpResponse:
    form = FORMS[kind](request.POST)
    if not form.is_valid():
        return _page(request, **{f"{kind}_form": form}, status=400)
    creation = Creation.objects.create(
        user=request.user,
        kind=kind,
        trace_id=answers.new_trace_id(request.user.pk),
        status=Creation.Status.STREAMING,
        **form.cleaned_data,
    )
    start = answers.Start(creation, form)  # its page opens once the answer has begun
    give_back_connection()  # the answer needs one while this request waits for it
    return start


def _refused(request, kind, form, refusal: ai.Refused) -> HttpResponse:
    form.add_error(None, refusal.message)
    return _page(request, **{f"{kind}_form": form}, status=refusal.http_status)


@login_required
def creation(request, pk):
    found = access.get_creation(request.user, pk)
    attach_feedback(request.user, [found])
    return render(request, "codegen/creation.html", {"creation": found})


@login_required
def download(request, pk):
    found = access.get_creation(request.user, pk)
    response = HttpResponse(found.download_text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{found.download_name}"'
    return response


@login_required
def delete(request, pk):
    found = access.get_creation(request.user, pk)
    if request.method == "POST":
        found.delete()
        return redirect("codegen:index")
    return render(request, "codegen/confirm_delete.html", {"creation": found})
