"""The HTTP edge of domain errors (iridium.infra.errors): one that a view lets through becomes
a page with its message, and its status (JSON for a client that asks for JSON). And PostHog in
the browser: the session id of a posted form, and the CSP that lets posthog-js reach PostHog."""

from csp.middleware import CSPMiddleware
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from iridium.ai.browser import web_origin
from iridium.infra.errors import DomainError


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


class ReplaySessionFromForm(MiddlewareMixin):
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


class ContentSecurityPolicyMiddleware(CSPMiddleware):
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
