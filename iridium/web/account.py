"""A person's account page: their plan and what it gives, their use of it this month, the
download of everything Iridium holds on them, and the deletion of their account.

This page lives at the top floor because what a person's data is spans every app."""

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium import ai
from iridium.accounts import audit
from iridium.accounts.models import AuditEntry
from iridium.ai.models import BudgetWarning, Feedback, Generation, Span
from support.models import Ticket, TicketMessage

DELETED = "Your account and everything Iridium held on you have been deleted."
WRONG_PASSWORD = "That is not your password."


class ConfirmDeletionForm(forms.Form):
    password = forms.CharField(
        label="Your password, to confirm", widget=forms.PasswordInput, strip=False
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(WRONG_PASSWORD)
        return password


@login_required
def account(request, deletion_form=None, status=200):
    user = request.user
    context = {
        "plan": user.effective_plan,
        "through_organization": user.organization is not None
        and user.organization.plan_id is not None,
        "standing": ai.standing(user),
        "deletion_form": deletion_form or ConfirmDeletionForm(user=user),
        "counts": {
            "conversations": Conversation.objects.filter(user=user).count(),
            "tickets": Ticket.objects.filter(user=user).count(),
            "creations": Creation.objects.filter(user=user).count(),
        },
    }
    return render(request, "account/index.html", context, status=status)


@login_required
def download(request):
    """Everything Iridium holds on the person, as one JSON file (the download is in the audit
    log, as a staff read of their content is)."""
    data = personal_data(request.user)
    audit.record(request.user, audit.EXPORT_PERSONAL_DATA, "personal data", subject=request.user)
    response = JsonResponse(
        data,
        encoder=DjangoJSONEncoder,
        json_dumps_params={"indent": 2, "ensure_ascii": False},
    )
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = (
        f'attachment; filename="iridium-{request.user.get_username()}-{stamp}.json"'
    )
    return response


@login_required
@require_POST
def delete(request):
    form = ConfirmDeletionForm(request.POST, user=request.user)
    if not form.is_valid():
        return account(request, deletion_form=form, status=400)
    user = request.user
    logout(request)
    # The deletion removes what the database's cascades do not (iridium.ai.deletion).
    user.delete()
    messages.success(request, DELETED)
    return redirect("home")


def personal_data(user) -> dict:
    plan = user.effective_plan
    return {
        "exported_at": timezone.now(),
        "account": {
            "username": user.get_username(),
            "email": user.email,
            "date_joined": user.date_joined,
            "last_login": user.last_login,
            "plan": plan.name,
            "organization": user.organization.name if user.organization else None,
        },
        "plan_changes": [
            {
                "changed_at": change.changed_at,
                "from": change.from_plan.name if change.from_plan else None,
                "to": change.to_plan.name if change.to_plan else None,
            }
            for change in user.plan_changes.select_related("from_plan", "to_plan")
        ],
        "conversations": [
            {
                "id": conversation.pk,
                "title": conversation.title,
                "created_at": conversation.created_at,
                "messages": [
                    _message(message, role=message.role)
                    for message in Message.objects.filter(conversation=conversation)
                ],
            }
            for conversation in Conversation.objects.filter(user=user).order_by("created_at")
        ],
        "tickets": [
            {
                "id": ticket.pk,
                "title": ticket.title,
                "description": ticket.description,
                "status": ticket.status,
                "priority": ticket.priority,
                "category": ticket.category,
                "created_at": ticket.created_at,
                "messages": [
                    _message(message, kind=message.kind, author=message.author_label)
                    for message in TicketMessage.objects.filter(ticket=ticket).select_related(
                        "author"
                    )
                ],
            }
            for ticket in Ticket.objects.filter(user=user).order_by("created_at")
        ],
        "creations": [
            {
                **_message(creation, kind=creation.kind, prompt=creation.prompt),
                "language": creation.language,
                "framework": creation.framework,
                "tone": creation.tone,
                "content_type": creation.content_type,
                "target_length": creation.target_length,
            }
            for creation in Creation.objects.filter(user=user).order_by("created_at")
        ],
        "ai_calls": [
            {
                "created_at": row.created_at,
                "trace_id": row.trace_id,
                "feature": row.feature,
                "model": row.model,
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cost_usd": row.total_cost_usd,
                "latency_ms": row.latency_ms,
                "is_error": row.is_error,
                "error": row.error,
                "privacy_mode": row.privacy_mode,
                "input": row.input,
                "output": row.output,
            }
            for row in Generation.objects.filter(user=user).order_by("created_at").iterator()
        ],
        # The tool steps of their calls: what the tools were given and gave back.
        "ai_steps": [
            {
                "created_at": row.created_at,
                "trace_id": row.trace_id,
                "name": row.name,
                "feature": row.feature,
                "latency_ms": row.latency_ms,
                "is_error": row.is_error,
                "error": row.error,
                "privacy_mode": row.privacy_mode,
                "input": row.input_state,
                "output": row.output_state,
            }
            for row in Span.objects.filter(user=user).order_by("created_at", "pk").iterator()
        ],
        "budget_warnings": [
            {
                "created_at": warning.created_at,
                "period": warning.period,
                "percent": warning.percent,
                "budget_usd": warning.budget_usd,
                "spent_usd": warning.spent_usd,
            }
            for warning in BudgetWarning.objects.filter(user=user).order_by("created_at")
        ],
        # Reads of their content by staff, and their own downloads (who read is staff's).
        "audit_log": [
            {"at": entry.at, "action": entry.action, "target": entry.target}
            for entry in AuditEntry.objects.filter(subject=user).order_by("at", "pk")
        ],
        "feedback": [
            {
                "given_at": feedback.created_at,
                "changed_at": feedback.updated_at,
                "trace_id": feedback.trace_id,
                "feature": feedback.feature,
                "rating": feedback.rating,
                "comment": feedback.comment,
            }
            for feedback in Feedback.objects.filter(user=user).order_by("created_at")
        ],
    }


def _message(message, **extra) -> dict:
    return {
        "id": message.pk,
        **extra,
        "content": message.content,
        "status": message.status,
        "created_at": message.created_at,
        "model": message.model,
        "cost_usd": message.cost_usd,
    }
