from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.validators import MaxLengthValidator

from .models import User


class SignUpForm(UserCreationForm):
    """Django's own sign-up form (username uniqueness, password validators) on our user model.
    When accounts are verified by email, the address is required."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "email"]

    def __init__(self, *args, email_required=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = email_required


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
