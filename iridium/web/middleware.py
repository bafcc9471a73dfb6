"""The HTTP edge of domain errors (iridium.infra.errors): one that a view lets through becomes
a page with its message, and its status (JSON for a client that asks for JSON). PostHog in the
browser: the session id of a posted form, and the CSP that lets posthog-js reach PostHog. And
Django's own middleware, run on the event loop where it does no I/O (`OnTheLoop`)."""

from functools import partial

from asgiref.sync import iscoroutinefunction, sync_to_async
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers import asgi
from django.http import JsonResponse
from django.middleware import clickjacking, common, csrf, security
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from iridium.ai.browser import web_origin
from iridium.infra.errors import DomainError


class OnTheLoop(MiddlewareMixin):
    """A middleware whose hooks do no I/O, run on the event loop.

    Serving an asynchronous request, Django runs each `process_request`, `process_view` and
    `process_response` of a `MiddlewareMixin` in a thread: nineteen thread hops for a request
    to /healthz with the middleware of settings.MIDDLEWARE, each a few hundred microseconds of
    a busy worker and a wait for the GIL. The hooks of the subclasses below only read headers
    and cookies and set them; they run in place (three hops are left: the request's signals,
    the view, the response's end). `response_needs_thread` says when `process_response` has
    I/O to do after all (a session or messages to save); then it hops.

    settings.MIDDLEWARE names Django's classes, where Django's checks (security, admin) look
    for them; `ASGIHandler` runs these subclasses in their place."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if iscoroutinefunction(self) and hasattr(self, "process_view"):
            in_place = self.process_view

            async def process_view(request, view, args, kwargs):
                return in_place(request, view, args, kwargs)

            self.process_view = process_view  # Django would run a synchronous one in a thread

    def response_needs_thread(self, request, response) -> bool:
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(OnTheLoop, security.SecurityMiddleware):
    pass


class SessionMiddleware(OnTheLoop, sessions.SessionMiddleware):
    """The session is read when first used (by `auser` below, in its thread); saving it is the
    only I/O here."""

    def response_needs_thread(self, request, response) -> bool:
        session = getattr(request, "session", None)
        return (
            session is not None
            and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)
            and not session.is_empty()
            and response.status_code < 500
        )


class CommonMiddleware(OnTheLoop, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(OnTheLoop, csrf.CsrfViewMiddleware):
    """The token is in a cookie: reading and setting it is no I/O (in the session it would be)."""

    def __init__(self, get_response):
        if settings.CSRF_USE_SESSIONS:
            raise ImproperlyConfigured("iridium's CSRF middleware keeps the token in a cookie")
        super().__init__(get_response)


async def _user_in_one_step(request):
    """The signed-in user, the session and the user read in one step off the event loop
    (Django's `auser` takes a thread hop for each), and the same object as `request.user`:
    Django caches the two apart, so synchronous work after an `auser()` (PostHog's middleware
    calls it on every request) would read the user once more."""
    if not hasattr(request, "_acached_user"):
        if request.session.session_key is None:  # no session cookie: nobody, no read
            request._acached_user = request._cached_user = AnonymousUser()
        else:
            request._acached_user = await sync_to_async(auth.get_user)(request)
    return request._acached_user


class AuthenticationMiddleware(OnTheLoop, auth.AuthenticationMiddleware):
    def process_request(self, request):
        super().process_request(request)
        request.auser = partial(_user_in_one_step, request)


class MessageMiddleware(OnTheLoop, messages.MessageMiddleware):
    """Messages added or shown are stored at the end (in a cookie, or the session when they do
    not fit): in a thread. A response without any stores nothing."""

    def response_needs_thread(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(OnTheLoop, clickjacking.XFrameOptionsMiddleware):
    pass


# Django's middleware as settings.MIDDLEWARE names it, and what the ASGI handler runs instead.
ON_THE_LOOP = {
    f"{django_class.__module__}.{django_class.__qualname__}": f"{__name__}.{ours.__qualname__}"
    for ours, django_class in [
        (SecurityMiddleware, security.SecurityMiddleware),
        (SessionMiddleware, sessions.SessionMiddleware),
        (CommonMiddleware, common.CommonMiddleware),
        (CsrfViewMiddleware, csrf.CsrfViewMiddleware),
        (AuthenticationMiddleware, auth.AuthenticationMiddleware),
        (MessageMiddleware, messages.MessageMiddleware),
        (XFrameOptionsMiddleware, clickjacking.XFrameOptionsMiddleware),
    ]
}


class ASGIHandler(asgi.ASGIHandler):
    """Django's, running the on-the-loop subclass of each of Django's middleware that has one
    (`OnTheLoop`). The synchronous handler (tests' Client) runs Django's own: there no hook
    takes a thread hop anyway."""

    def load_middleware(self, is_async=False):
        named = settings.MIDDLEWARE
        settings.MIDDLEWARE = [ON_THE_LOOP.get(path, path) for path in named]
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = named


class DomainErrorMiddleware(MiddlewareMixin):
    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse(
                {"error": {"code": exception.code, "message": exception.message}},
                status=exception.http_status,
            )
        return render(
            request,
            "error.html",
            {"code": exception.code, "message": exception.message},
            status=exception.http_status,
        )


class ReplaySessionFromForm(OnTheLoop):
    """A form cannot send headers: the browser's PostHog session id that static/js/analytics.js
    puts in a posted form (`posthog_session_id`) becomes the `X-POSTHOG-SESSION-ID` header that
    PostHog's Django middleware reads (a header the page sent wins). Validated where it is
    used (iridium.ai.replay)."""

    FIELD = "posthog_session_id"
    HEADER = "HTTP_X_POSTHOG_SESSION_ID"

    def process_request(self, request):
        if request.method != "POST" or self.HEADER in request.META:
            return
        if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return
        value = request.POST.get(self.FIELD)
        if value:
            request.META[self.HEADER] = value[:100]
            request.__dict__.pop("headers", None)  # built from META once, when first read


class ContentSecurityPolicyMiddleware(OnTheLoop, CSPMiddleware):
    """django-csp's policy (settings.CONTENT_SECURITY_POLICY), and with PostHog in the browser
    (POSTHOG_WEB_KEY) its host in connect-src: posthog-js comes from our static files and
    sends its events, flags and replays there, and needs nothing else."""

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only=report_only)
        origin = web_origin()
        if origin and not report_only:
            update = dict(parts.update or {})
            update["connect-src"] = [*update.get("connect-src", []), origin]
            parts.update = update
        return parts
