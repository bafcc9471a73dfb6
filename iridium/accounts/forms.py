from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.validators import MaxLengthValidator

from .models import User


class SignUpForm(UserCreationForm):
    """Django's own sign-up form (username uniqueness, password validators) on our user model.
    When accounts are verified by email, the address is required, and one address makes one
    account (else a mailbox would verify any number of accounts, each with a budget of its own)."""

    TAKEN = "An account with this email address exists already. Log in, or reset its password."

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "email"]

    def __init__(self, *args, email_required=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.email_required = email_required
        self.fields["email"].required = email_required

    def clean_email(self):
        email = self.cleaned_data.get("email", "")
        if self.email_required and User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(self.TAKEN, code="email_taken")
        return email


class UsernameLengthChecked:
    """A log-in form whose username is checked for length before any attempt is made (Django
    only tells the browser; a longer one would reach the log-in throttling's records, which
    cannot hold it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))


class LoginForm(UsernameLengthChecked, AuthenticationForm):
    pass


class AdminLoginForm(UsernameLengthChecked, AdminAuthenticationForm):
    pass
