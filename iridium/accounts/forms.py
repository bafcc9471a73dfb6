from django.contrib.auth.forms import UserCreationForm

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
