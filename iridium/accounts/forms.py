from django.contrib.auth.forms import UserCreationForm

from .models import User


class SignUpForm(UserCreationForm):
    """Django's own sign-up form (username uniqueness, password validators) on our user model."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "email"]
