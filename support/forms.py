from django import forms

from .models import Ticket
from .services import MAX_TEXT


class TicketForm(forms.ModelForm):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=MAX_TEXT)

    class Meta:
        model = Ticket
        fields = ["title", "description", "priority", "category"]


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *Ticket.Status.choices], required=False)
    priority = forms.ChoiceField(
        choices=[("", "Any priority"), *Ticket.Priority.choices], required=False
    )
    category = forms.ChoiceField(
        choices=[("", "Any category"), *Ticket.Category.choices], required=False
    )
    assigned = forms.CharField(required=False)
    q = forms.CharField(required=False, max_length=200, label="Search")
