"""Iridium settings: one module, read from the environment with django-environ.

With nothing set, Iridium runs on its embedded defaults: a SQLite file in var/, Django's
local-memory cache and Channels' in-memory layer, with development-safe values for the rest.
DATABASE_URL switches to PostgreSQL (psycopg 3) and REDIS_URL to Django's RedisCache and
channels-redis. `.env.example` lists every variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from iridium.infra.redis import pool_options as redis_pool_options

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A .env file beside manage.py is read when present; real environment variables win over it.
environ.Env.read_env(env.str("IRIDIUM_ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DEBUG", default=True)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off (production) Iridium needs a long random "
            "SECRET_KEY; generate one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = "django-insecure-iridium-development-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ---------------------------------------------------------------------------

INSTALLED_APPS = [
    "iridium.web.admin_site.IridiumAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "iridium.jobs",
    "iridium.accounts",
    "iridium.ai",
    "iridium.live",
    "iridium.analytics",
    "chat",
    "support",
    "codegen",
    "iridium.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The browser's PostHog session id of a form post, then PostHog's context for the request
    # (its session id is what iridium.ai.replay.current() reads for the AI calls it starts).
    "iridium.web.middleware.ReplaySessionFromForm",
    "posthog.integrations.django.PosthogContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "iridium.web.middleware.ContentSecurityPolicyMiddleware",
    "iridium.web.middleware.DomainErrorMiddleware",
    # Last, as django-axes asks: it turns a locked-out log-in into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "iridium.urls"
ASGI_APPLICATION = "iridium.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "iridium.web.context_processors.layout",
            ],
        },
    },
]

# --- Storage: database, cache, channel layer ------------------------------------------------

DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": Path(env.str("SQLITE_PATH", default=str(VAR_DIR / "iridium.sqlite3"))),
            "OPTIONS": {
                # WAL and IMMEDIATE transactions let the async workers' threads write without
                # "database is locked" errors under ordinary load.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not memory, so that test servers in other threads share the test database.
            "TEST": {"NAME": VAR_DIR / "test-iridium.sqlite3"},
        }
    }

# Under ASGI each request's sync code may run in a thread of its own, so a kept connection
# would be left open in a thread that never runs again: connections close after each request
# (Django's advice for ASGI). On PostgreSQL "closing" returns the connection to a pool in the
# process (psycopg_pool, Django's "pool" option) instead of a new connection per request, which
# cost about 3.5 ms here (docs/performance.md). DB_POOL=false turns it off (PgBouncer in
# transaction mode in front of PostgreSQL, for instance).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
# With the pool this makes Django pass psycopg's check: a connection the database ended while it
# waited in the pool (a restart, a failover) is replaced when taken, not handed to a request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_POOL", default=True
):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": 10,  # seconds a request waits for a free connection before failing
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Seconds a Redis operation may take before the cache gives up; kept short so that an
# unreachable Redis slows a request by at most this much.
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=1.0)
# After Redis failed, seconds before the AI cache and budget counters try it again.
REDIS_RETRY_SECONDS = env.float("REDIS_RETRY_SECONDS", default=5.0)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "iridium",
            "OPTIONS": {
                "pool_class": "iridium.infra.redis.SharedConnectionPool",
                "socket_connect_timeout": REDIS_TIMEOUT,
                "socket_timeout": REDIS_TIMEOUT,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    # Through iridium.infra.redis.Connection, so that cancellations reach
                    # channels-redis's receive loop (see there).
                    redis_pool_options(
                        REDIS_URL,
                        # Each socket waits on Redis with a blocking pop of 5 s (channels-redis);
                        # the client's own read timeout (5 s by default since redis-py 8) must
                        # be longer, or every quiet socket is dropped after 5 s.
                        socket_timeout=15,
                        socket_connect_timeout=REDIS_TIMEOUT,
                        # A connection per operation in flight (redis-py's default cap is 100,
                        # which hundreds of sockets connecting at once, after a deploy, exceed).
                        max_connections=1000,
                    )
                ],
                "prefix": "iridium:channels",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "iridium.infra.layers.InMemoryChannelLayer"}}

# --- Background tasks and periodic work ------------------------------------------------------

# Django's task framework (the django-tasks backport) on the database: `manage.py worker` runs
# the tasks and keeps the schedule below, once across any number of workers (iridium.jobs).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
PERIODIC_JOBS = {
    # task path: every N seconds
    "iridium.analytics.tasks.evaluate_alerts": env.int("ALERTS_EVERY_SECONDS", default=60),
    "iridium.analytics.tasks.rollup_generations": 3600,
    "iridium.ai.tasks.purge_generations": 86400,
}

# --- Accounts -------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses log-ins for a locked-out username and address.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Log-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is locked out for AXES_COOLOFF_MINUTES (the right password too).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Sign-ups allowed per client address (django-ratelimit's rate syntax, e.g. 5/h).
SIGNUP_RATE = env.str("SIGNUP_RATE", default="5/h")
RATELIMIT_FAIL_OPEN = (
    True  # Redis away: sign-up stays possible (log-in throttling is in the database)
)
# django-ratelimit's checks want a shared cache; the embedded default (one process) has none.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
# When true, a new account can log in only after following the link mailed to its address.
ACCOUNTS_VERIFY_EMAIL = env.bool("ACCOUNTS_VERIFY_EMAIL", default=False)

# The plan a new user starts on (its slug); created with the others by a data migration.
DEFAULT_PLAN_SLUG = "free"

# --- Outside services -----------------------------------------------------------------------

# Without OPENAI_API_KEY (and without OPENAI_BASE_URL) the app talks to its own demo provider,
# started by `make run`: the same code path as production, over real HTTP.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
DEMO_PROVIDER_PORT = env.int("DEMO_PROVIDER_PORT", default=8765)
AI_USES_DEMO_PROVIDER = not OPENAI_API_KEY and not OPENAI_BASE_URL
AI_BASE_URL = OPENAI_BASE_URL or (
    f"http://127.0.0.1:{DEMO_PROVIDER_PORT}/v1" if AI_USES_DEMO_PROVIDER else ""
)
# The provider name used for pricing and analytics ($ai_provider).
AI_PROVIDER = env.str("AI_PROVIDER", default="openai")
# Seconds to connect, and to wait for each read from the provider (a stream may run longer).
AI_CONNECT_TIMEOUT = env.float("AI_CONNECT_TIMEOUT", default=5.0)
AI_READ_TIMEOUT = env.float("AI_READ_TIMEOUT", default=60.0)
# Retries of 408/409/429/5xx/timeouts by the openai SDK, and the deadline for all attempts of
# one call to produce a response.
AI_MAX_RETRIES = env.int("AI_MAX_RETRIES", default=2)
AI_DEADLINE_SECONDS = env.float("AI_DEADLINE_SECONDS", default=120.0)
# When a worker stops (SIGTERM), answers being written get this long to finish; then they are
# stopped and saved as they are. Keep it under the process manager's own grace period.
AI_SHUTDOWN_GRACE_SECONDS = env.float("AI_SHUTDOWN_GRACE_SECONDS", default=20.0)
# A call in flight that has shown no sign of life for this long was on a worker that died: it
# is completed as interrupted, with its usage estimated (iridium.ai.recovery).
AI_CALL_STALE_SECONDS = env.float("AI_CALL_STALE_SECONDS", default=30.0)
# An answer "being written" that has shown no sign of life for this long was on a worker that
# died: it is marked interrupted (with Retry), and its conversation or ticket may answer again.
ANSWER_STALE_SECONDS = env.float("ANSWER_STALE_SECONDS", default=15.0)
# Model calls per answer when tools are in play (the last one may not call tools).
AI_MAX_TOOL_STEPS = env.int("AI_MAX_TOOL_STEPS", default=5)
# Features whose calls always run in privacy mode (no prompts or answers outside their app).
AI_PRIVATE_FEATURES = env.list("AI_PRIVATE_FEATURES", default=["content-generation"])

# Feature flags: how long an evaluation is kept per user, and how long a request may wait for
# the first one (after that it uses the last known values or the defaults).
AI_FLAGS_TTL_SECONDS = env.float("AI_FLAGS_TTL_SECONDS", default=30.0)
AI_FLAGS_WAIT_SECONDS = env.float("AI_FLAGS_WAIT_SECONDS", default=0.05)
# What `ai-kill-switch` does when simply on: "refuse" AI calls or use the "cheapest" model.
AI_KILL_SWITCH_MODE = env.str("AI_KILL_SWITCH_MODE", default="refuse")
# Also considered when the kill switch asks for the cheapest model.
AI_CHEAP_MODEL = env.str("AI_CHEAP_MODEL", default="gpt-4.1-nano")
# Response cache: seconds an answer is kept, by default and per feature ("feature=seconds,...").
AI_CACHE_TTL_SECONDS = env.int("AI_CACHE_TTL_SECONDS", default=3600)
AI_CACHE_TTLS = env.dict("AI_CACHE_TTLS", cast={"value": int}, default={})
# Price data: empty (the default) prices with the data bundled in genai-prices. A URL of
# genai-prices' data (e.g. its repository's prices/new_data/v2/data.json) is fetched every
# AI_PRICES_UPDATE_EVERY_SECONDS by one worker for the whole install and stored in the
# database; every process then prices with the newest stored data (iridium.ai.pricing).
AI_PRICES_UPDATE_URL = env.str("AI_PRICES_UPDATE_URL", default="")
AI_PRICES_UPDATE_EVERY_SECONDS = env.int("AI_PRICES_UPDATE_EVERY_SECONDS", default=6 * 3600)
if AI_PRICES_UPDATE_URL:
    PERIODIC_JOBS["iridium.ai.tasks.refresh_prices"] = AI_PRICES_UPDATE_EVERY_SECONDS

# Chat only: the longest message (or edited question) a person may send; support's limit is its
# own (support.services.MAX_TEXT), the public demo's is PUBLIC_DEMO_MAX_MESSAGE_CHARS.
# Every socket (chat, support, generate, the public demo): the largest frame it reads; a larger
# one gets an `error` frame and changes nothing.
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=8000)
WEBSOCKET_MAX_FRAME_CHARS = env.int("WEBSOCKET_MAX_FRAME_CHARS", default=64_000)

# The public demo on the home page (iridium/web/public_demo.py): visitors without an account try
# the assistant. PUBLIC_DEMO=false turns it off. Questions a day per visitor (browser session)
# and per address (django-ratelimit's rate syntax), all visitors' questions a day for the whole
# install (the operator's cap on what the demo costs), the longest question, the longest answer.
PUBLIC_DEMO = env.bool("PUBLIC_DEMO", default=True)
PUBLIC_DEMO_VISITOR_RATE = env.str("PUBLIC_DEMO_VISITOR_RATE", default="5/d")
PUBLIC_DEMO_ADDRESS_RATE = env.str("PUBLIC_DEMO_ADDRESS_RATE", default="20/d")
PUBLIC_DEMO_DAILY_CALLS = env.int("PUBLIC_DEMO_DAILY_CALLS", default=500)
PUBLIC_DEMO_MAX_MESSAGE_CHARS = env.int("PUBLIC_DEMO_MAX_MESSAGE_CHARS", default=1000)
PUBLIC_DEMO_MAX_OUTPUT_TOKENS = env.int("PUBLIC_DEMO_MAX_OUTPUT_TOKENS", default=400)

# Retention of the generation record (iridium.ai.retention: daily, or manage.py
# purge_generations): prompts and answers are cleared after ANALYTICS_CONTENT_RETENTION_DAYS,
# rows deleted after ANALYTICS_RETENTION_DAYS (the console's daily roll-ups keep their figures).
ANALYTICS_CONTENT_RETENTION_DAYS = env.int("ANALYTICS_CONTENT_RETENTION_DAYS", default=30)
ANALYTICS_RETENTION_DAYS = env.int("ANALYTICS_RETENTION_DAYS", default=400)
# Plans whose users are known to PostHog only by a pseudonym: an HMAC of their id keyed with
# ANALYTICS_PSEUDONYM_SECRET (default: derived from SECRET_KEY), not reversible without it.
ANALYTICS_PSEUDONYMOUS_PLANS = env.list("ANALYTICS_PSEUDONYMOUS_PLANS", default=["enterprise"])
ANALYTICS_PSEUDONYM_SECRET = env.str("ANALYTICS_PSEUDONYM_SECRET", default="")

# Without POSTHOG_API_KEY nothing is sent to PostHog and everything else still works.
POSTHOG_API_KEY = env.str("POSTHOG_API_KEY", default="")
POSTHOG_HOST = env.str("POSTHOG_HOST", default="https://us.i.posthog.com")
# PostHog in the browser (posthog-js, from our static files): the project's public key; without
# it pages load no PostHog script. Its host defaults to POSTHOG_HOST; the UI host is PostHog's
# app address when the host is a reverse proxy (links in the toolbar and replays).
POSTHOG_WEB_KEY = env.str("POSTHOG_WEB_KEY", default="")
POSTHOG_WEB_HOST = env.str("POSTHOG_WEB_HOST", default="")
POSTHOG_WEB_UI_HOST = env.str("POSTHOG_WEB_UI_HOST", default="")


# posthog-python's Django middleware (posthog.integrations.django) opens PostHog's context for
# the requests that may start an AI call, and only reads the browser's session and distinct id
# headers (X-POSTHOG-SESSION-ID): no request properties (email, address, agent) join any event,
# and exceptions are reported by the AI service, not by the middleware.
def _posthog_context_wanted(request) -> bool:
    return request.method == "POST"


def _no_request_properties(properties: dict) -> dict:
    return {}


POSTHOG_MW_REQUEST_FILTER = _posthog_context_wanted
POSTHOG_MW_PROPERTIES_MAP = _no_request_properties
POSTHOG_MW_CAPTURE_EXCEPTIONS = False
POSTHOG_MW_CAPTURE_TRACING_HEADERS = True
# To delete a deleted user's person in PostHog: a personal API key and the project's id.
POSTHOG_PERSONAL_API_KEY = env.str("POSTHOG_PERSONAL_API_KEY", default="")
POSTHOG_PROJECT_ID = env.str("POSTHOG_PROJECT_ID", default="")
# A PostHog secret key (phs_...) lets feature flags be evaluated locally, without a request each.
POSTHOG_SECRET_KEY = env.str("POSTHOG_SECRET_KEY", default="")
# Seconds the PostHog client's background sender waits for PostHog before retrying.
POSTHOG_TIMEOUT = env.float("POSTHOG_TIMEOUT", default=5.0)

# --- Security -------------------------------------------------------------------------------

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTP Strict Transport Security: a year by default when served over TLS.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if BEHIND_TLS_PROXY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from our own static files, no
# inline script or style anywhere; sockets to this site only. With POSTHOG_WEB_KEY, connect-src
# also names PostHog's host (iridium.web.middleware.ContentSecurityPolicyMiddleware).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# --- Mail (alert emails) ----------------------------------------------------------------------

DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="iridium@localhost")
# EMAIL_URL such as smtp://user:password@host:587 or consolemail:// (the default prints mail).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))

# --- Internationalisation, static files, logging --------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}

# Feedback on answers is sent to PostHog as responses to this survey ("survey sent" with
# $ai_trace_id, as PostHog's LLM analytics documents user feedback): create it from a trace's
# Feedback tab in PostHog. Without it feedback is kept here only. The question ids are the
# survey's (its thumbs question, its follow-up text question); left empty, responses are sent
# by question index ($survey_response, $survey_response_1).
POSTHOG_FEEDBACK_SURVEY_ID = env.str("POSTHOG_FEEDBACK_SURVEY_ID", default="")
POSTHOG_FEEDBACK_RATING_QUESTION_ID = env.str("POSTHOG_FEEDBACK_RATING_QUESTION_ID", default="")
POSTHOG_FEEDBACK_COMMENT_QUESTION_ID = env.str("POSTHOG_FEEDBACK_COMMENT_QUESTION_ID", default="")
