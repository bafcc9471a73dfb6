from django import forms

from .models import LANGUAGES, Creation

MAX_PROMPT = 4000
EMPTY_PROMPT = "Describe what you want first."


# Both forms share a page: each names its fields' ids after itself (code-prompt,
# content-prompt), so that every label points at its own field.


class CodeForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "code-%s")
        super().__init__(*args, **kwargs)

    prompt = forms.CharField(
        label="What to build",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_PROMPT,
        strip=True,
        error_messages={"required": EMPTY_PROMPT},
    )
    language = forms.ChoiceField(choices=LANGUAGES)
    framework = forms.CharField(max_length=50, required=False, help_text="Optional, e.g. Django.")
    complexity = forms.ChoiceField(
        choices=Creation.Complexity.choices,
        initial=Creation.Complexity.SIMPLE,
        help_text="Advanced uses your plan's advanced model.",
    )


class ContentForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "content-%s")
        super().__init__(*args, **kwargs)

    prompt = forms.CharField(
        label="Topic",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_PROMPT,
        strip=True,
        error_messages={"required": EMPTY_PROMPT},
    )
    tone = forms.ChoiceField(choices=Creation.Tone.choices)
    content_type = forms.ChoiceField(label="Content type", choices=Creation.ContentType.choices)
    target_length = forms.IntegerField(
        label="Target length (words)", min_value=20, max_value=2000, initial=300
    )
