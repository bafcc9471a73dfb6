from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django_ratelimit.core import is_ratelimited

from .forms import SignUpForm
from .models import Plan, User

SIGNUPS_LIMITED = (
    "Too many accounts were created from your network recently. Please try again later."
)
BACKEND = "django.contrib.auth.backends.ModelBackend"


class _VerificationTokens(PasswordResetTokenGenerator):
    """Links that activate an account once: the account's state is part of the token."""

    key_salt = "iridium.accounts.verify-email"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.is_active}{user.email}{timestamp}"


verification_tokens = _VerificationTokens()


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None, email_required=settings.ACCOUNTS_VERIFY_EMAIL)
    if request.method == "POST" and form.is_valid():
        # Only accounts actually created count toward the limit, so mistakes cost nothing.
        limited = is_ratelimited(
            request, group="accounts.signup", key="ip", rate=settings.SIGNUP_RATE, increment=True
        )
        if limited:
            form.add_error(None, SIGNUPS_LIMITED)
            return render(request, "registration/signup.html", {"form": form}, status=429)
        if settings.ACCOUNTS_VERIFY_EMAIL:
            user = form.save(commit=False)
            user.is_active = False
            user.save()
            _send_verification(request, user)
            return render(request, "registration/verify_sent.html", {"email": user.email})
        user = form.save()
        login(request, user, backend=BACKEND)
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


def verify_email(request, uidb64, token):
    """The link in the sign-up mail: activates the account and logs it in."""
    try:
        user = User.objects.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or user.is_active or not verification_tokens.check_token(user, token):
        return render(request, "registration/verify_failed.html", status=400)
    user.is_active = True
    user.save(update_fields=["is_active"])
    login(request, user, backend=BACKEND)
    return redirect("home")


def _send_verification(request, user):
    link = request.build_absolute_uri(
        reverse(
            "verify_email",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": verification_tokens.make_token(user),
            },
        )
    )
    send_mail(
        "Confirm your Iridium account",
        render_to_string("registration/verify_email.txt", {"user": user, "link": link}),
        None,
        [user.email],
    )


def plans(request):
    """What each plan gives, the person's own marked; changes are made by an administrator."""
    current = request.user.effective_plan if request.user.is_authenticated else None
    return render(request, "accounts/plans.html", {"plans": Plan.objects.all(), "current": current})
