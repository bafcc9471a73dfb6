"""Who may read the analytics console, and whose AI content they may read. Views ask here.

- `analytics.view_console`: the figures, the traces list, the budgets page and the CSV export
  (none of which shows a prompt or an answer). The "Analysts" group has it.
- `analytics.view_ai_content`: the prompts, answers and tool input and output of any trace,
  and the whole text of its errors (a provider's error message may quote the prompt; without
  this permission only an error's type and HTTP status are shown and exported: `error_shown`).
- An app may grant the content of its own traces to the people who handle them: it registers a
  rule for its trace-id prefix (`register_content_rule`, from its AppConfig.ready), so this
  package never imports the apps above it. Support grants a ticket's trace to the agents who may
  handle that ticket.

Superusers have every permission. Anonymous people are sent to log in; signed-in people
without the permission get 403.
"""

import re
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

VIEW_CONSOLE = "analytics.view_console"
VIEW_AI_CONTENT = "analytics.view_ai_content"
ANALYSTS_GROUP = "Analysts"
# What the group gives (its data migration, analytics 0008, writes the same).
ANALYST_PERMISSIONS = ["view_console"]

ContentRule = Callable[[object, str], bool]
_content_rules: dict[str, ContentRule] = {}


def register_content_rule(prefix: str, rule: ContentRule) -> None:
    """`rule(user, trace_id)` says whether `user` may read the content of a trace whose id
    starts with `prefix` (and the trace's page, even without the console permission)."""
    _content_rules[prefix] = rule


def analysts_group():
    """The "Analysts" group with its permission (made by a migration; made again here where
    it is missing, as in a database emptied by tests)."""
    from django.contrib.auth.models import Group, Permission

    group, created = Group.objects.get_or_create(name=ANALYSTS_GROUP)
    if created:
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="analytics", codename__in=ANALYST_PERMISSIONS
            )
        )
    return group


def _granted_by_app(user, trace_id: str) -> bool:
    for prefix, rule in _content_rules.items():
        if trace_id.startswith(prefix):
            return bool(rule(user, trace_id))
    return False


def can_view_console(user) -> bool:
    return user.is_active and user.has_perm(VIEW_CONSOLE)


def can_view_any_content(user) -> bool:
    """Whether `user` may read the prompts and answers of every trace (the CSV export asks)."""
    return user.is_authenticated and user.is_active and user.has_perm(VIEW_AI_CONTENT)


def can_view_content(user, trace_id: str) -> bool:
    """Whether `user` may read the prompts and answers of the trace."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.has_perm(VIEW_AI_CONTENT) or _granted_by_app(user, trace_id)


# An error as recorded starts with its exception's name ("BadRequestError: ...",
# "APITimeoutError (HTTP 504) ..."); a tool's error is a sentence, and has none.
_ERROR_TYPE = re.compile(r"[A-Z][A-Za-z0-9_]*(?=$|:| \()")
ERROR_WITHOUT_TYPE = "Error"


def error_shown(error: str, *, status: int | None, content: bool) -> str:
    """What a viewer reads of a recorded error (a generation's or a tool step's). Its text is
    content (a provider's message may repeat the prompt, a tool's its input): with `content`
    (the viewer may read the trace's content) it is shown whole, otherwise only the error's type
    and HTTP status."""
    if content or not error:
        return error
    match = _ERROR_TYPE.match(error)
    name = match[0] if match else ERROR_WITHOUT_TYPE
    return name + (f" (HTTP {status})" if status else "")


def can_view_trace(user, trace_id: str) -> bool:
    """The trace's page: the console's people, and those its app lets read its content."""
    return can_view_console(user) or can_view_content(user, trace_id)


def _refuse(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    raise PermissionDenied


def console_required(view):
    """The view needs `analytics.view_console`."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not request.user.is_authenticated or not can_view_console(request.user):
            return _refuse(request)
        return view(request, *args, **kwargs)

    return checked


def trace_required(view):
    """The view of one trace (`trace_id`), or of a session of traces (`session_id`: a
    conversation's or ticket's, whose id starts like its traces'), needs `can_view_trace`."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        trace_id = args[0] if args else kwargs.get("trace_id", kwargs.get("session_id", ""))
        if not request.user.is_authenticated or not can_view_trace(request.user, trace_id):
            return _refuse(request)
        return view(request, *args, **kwargs)

    return checked
