"""LeadFunnel settings: one module, driven by environment variables.

Every variable is optional in development. Malformed values stop the process
with a message naming the variable, rather than running half-configured.
"""

import os
import re
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEADFUNNEL_VAR_DIR", BASE_DIR / "var"))
TESTING = "pytest" in sys.modules


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "leadfunnel",
    "leads",
    "scoring",
    "nurturing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # 413 for oversized API bodies before any parser; 503 + Retry-After when the database is down.
    "leadfunnel.middleware.RequestSizeLimitMiddleware",
    "leadfunnel.middleware.DatabaseUnavailableMiddleware",
    # 400 for a NUL character in the query string (PostgreSQL refuses it in text).
    "leadfunnel.middleware.NulCharacterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "leadfunnel.urls"
WSGI_APPLICATION = "leadfunnel.wsgi.application"

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
                "leadfunnel.context_processors.roles",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# Embedded default: SQLite under var/ (WAL, immediate transactions so the web
# process, the worker and beat can share it). PostgreSQL through DATABASE_URL.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60))}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "leadfunnel.sqlite3",
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
# Parallel test runs (several checkouts on one server) can pick their own test database.
if os.environ.get("TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DB_NAME"]}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# PostgreSQL's JIT compiles any query whose *estimated* cost passes jit_above_cost; for the app's
# queries over 100k leads (segment conditions, live counts, reports) compiling took longer than
# running them (360 ms of JIT for a 100 ms segment count). Off unless PG_JIT=on.
if IS_POSTGRES and not env_bool("PG_JIT", False):
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker and cache ---------------------------------------------------------
# CELERY_BROKER_URL, else REDIS_URL, else kombu's filesystem transport under var/
# (a broker that needs no server).
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # Fail fast when Redis is down: the outbox keeps the work, the sweeper delivers it later.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 1,
        "socket_timeout": 5,
        "max_retries": 1,
        "visibility_timeout": 3600,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}

CACHE_URL = (
    os.environ.get("CACHE_URL", "") or REDIS_URL or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "")
)
if TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Queues by kind of work (design.md, "Past one machine").
CELERY_TASK_DEFAULT_QUEUE = "events"
CELERY_TASK_ROUTES = {
    "nurturing.tasks.*": {"queue": "nurture"},
    "scoring.tasks.recompute_*": {"queue": "bulk"},
    "scoring.tasks.train_*": {"queue": "bulk"},
    "leads.tasks.import_*": {"queue": "bulk"},
}
# Every queue, declared: a plain `celery -A leadfunnel worker` consumes all of them (Celery's
# default is the task_queues list), and `-Q nurture` narrows a worker to one kind of work.
CELERY_TASK_QUEUES = tuple(
    Queue(name, routing_key=name)
    for name in dict.fromkeys([CELERY_TASK_DEFAULT_QUEUE, *(route["queue"] for route in CELERY_TASK_ROUTES.values())])
)
CELERY_TASK_CREATE_MISSING_QUEUES = True
# Days an anonymous visitor's page views are kept before identification (then deleted by beat).
RETENTION_ANONYMOUS_DAYS = env_int("RETENTION_ANONYMOUS_DAYS", 90)
if RETENTION_ANONYMOUS_DAYS < 1:
    raise ImproperlyConfigured(f"RETENTION_ANONYMOUS_DAYS must be 1 or more, got {RETENTION_ANONYMOUS_DAYS}")
# How often beat asks for due nurture steps (seconds). Tests of the real beat set it to 1.
NURTURE_TICK_SECONDS = env_float("NURTURE_TICK_SECONDS", 60.0)
# The beat schedule: every periodic job of every app, here and nowhere else (tasks by name).
CELERY_BEAT_SCHEDULE: dict = {
    # Plumbing (leadfunnel/tasks.py): side effects whose kick was lost, retries, clean-up.
    "outbox-sweep": {"task": "leadfunnel.tasks.sweep_outbox", "schedule": 15.0},
    "housekeeping": {"task": "leadfunnel.tasks.housekeeping", "schedule": 3600.0},
    "notifications-sweep": {"task": "leadfunnel.tasks.notifications_sweep", "schedule": 30.0},
    "webhooks-sweep": {"task": "leadfunnel.tasks.webhooks_sweep", "schedule": 15.0},
    # Leads (leads/tasks.py): SLA deadlines, imports abandoned by a dead worker.
    "sla-enforce": {"task": "leads.tasks.sla_enforce", "schedule": 60.0},
    "imports-resume-stalled": {"task": "leads.tasks.import_resume_stalled", "schedule": 300.0},
    # Privacy: form payloads, IPs and user agents past RETENTION_SUBMISSION_DAYS, nightly.
    "retention-submissions": {"task": "leads.tasks.retention_sweep", "schedule": crontab(hour=3, minute=41)},
    # Double opt-in confirmation emails whose kick was lost or whose send failed.
    "consent-requests-sweep": {"task": "leads.tasks.consent_requests_sweep", "schedule": 60.0},
    # Lost deals back to marketing after LOST_RECYCLE_AFTER_DAYS (hourly: the period is days).
    "lost-recycle": {"task": "leads.tasks.lost_recycle", "schedule": crontab(minute=41)},
    # Website tracking: anonymous page views past RETENTION_ANONYMOUS_DAYS, daily.
    "tracking-retention": {"task": "leads.tasks.anonymous_activity_purge", "schedule": crontab(hour=3, minute=41)},
    # Deferred scoring: whatever a lost kick left in the queue (SCORING_DEFERRED).
    "scores-drain": {"task": "leads.tasks.scores_drain", "schedule": 5.0},
    # Scoring (scoring/tasks.py, scoring/predictive/tasks.py).
    "scoring-decay-refresh": {
        "task": "scoring.tasks.recompute_decayed_scores",
        "schedule": crontab(minute=17),  # hourly; decay half-lives are days
    },
    "scoring-recompute-resume": {"task": "scoring.tasks.recompute_resume_stale", "schedule": 300.0},
    # Predictive scoring: retrain weekly on the recorded history.
    "predictive-weekly-training": {"task": "scoring.tasks.train_predictive_model", "schedule": 7 * 24 * 3600.0},
    "backtest-resume": {"task": "scoring.tasks.recompute_backtest_resume", "schedule": 300.0},
    # Nurturing (nurturing/tasks.py): due steps, then segment enrolments.
    "nurture-tick": {"task": "nurturing.tasks.tick", "schedule": NURTURE_TICK_SECONDS},
    "nurture-segments": {"task": "nurturing.tasks.enroll_segments", "schedule": 300.0},
}

# --- Predictive scoring and back-testing ------------------------------------------
# Fewest customers (and non-customers) the history must hold before a model is trained.
PREDICTIVE_MIN_OUTCOMES = env_int("PREDICTIVE_MIN_OUTCOMES", 30)
# Label: reached "customer" (or "sql") within this many days after a snapshot.
PREDICTIVE_TARGET = os.environ.get("PREDICTIVE_TARGET", "customer")
if PREDICTIVE_TARGET not in ("customer", "sql"):
    raise ImproperlyConfigured(f"PREDICTIVE_TARGET must be customer or sql, got {PREDICTIVE_TARGET!r}")
PREDICTIVE_HORIZON_DAYS = env_int("PREDICTIVE_HORIZON_DAYS", 90)
PREDICTIVE_SNAPSHOT_DAYS = env_int("PREDICTIVE_SNAPSHOT_DAYS", 30)
PREDICTIVE_MAX_SNAPSHOTS = env_int("PREDICTIVE_MAX_SNAPSHOTS", 6)
# Back-tests over at most this many interactions answer in the request; bigger ones run as a job.
BACKTEST_SYNC_INTERACTIONS = env_int("BACKTEST_SYNC_INTERACTIONS", 20000)

# --- Auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Lockout after repeated failed sign-ins (per username and IP, and per IP), see leadfunnel/security.py.
AUTHENTICATION_BACKENDS = [
    "leadfunnel.security.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 20)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)
# POST /api/v1/auth/token/ per client IP (DRF rate syntax; "off" disables).
TOKEN_RATE_LIMIT = os.environ.get("TOKEN_RATE_LIMIT", "10/min")
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- REST API -----------------------------------------------------------------
INTAKE_RATE_LIMIT = os.environ.get("INTAKE_RATE_LIMIT", "120/min")


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate (``120/min``, ``10/s``…) or ``off``."""
    raw = (os.environ.get(name) or default).strip()
    if raw.lower() == "off" or re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", raw):
        return raw
    raise ImproperlyConfigured(f"{name} must be a rate such as 120/min (or off), got {raw!r}")


# Website tracking: page views per client IP on POST /api/v1/track/ (a visitor sends one per page).
TRACK_RATE_LIMIT = env_rate("TRACK_RATE_LIMIT", "300/min")
# Interactions for an email no lead has: "create" a visitor (default) or "reject" the event.
LEADFUNNEL_UNKNOWN_EMAIL_EVENTS = os.environ.get("LEADFUNNEL_UNKNOWN_EMAIL_EVENTS", "create").strip().lower()
if LEADFUNNEL_UNKNOWN_EMAIL_EVENTS not in {"create", "reject"}:
    raise ImproperlyConfigured(
        f"LEADFUNNEL_UNKNOWN_EMAIL_EVENTS must be 'create' or 'reject', got {LEADFUNNEL_UNKNOWN_EMAIL_EVENTS!r}"
    )
# What a marketing message (a sequence's email or SMS) needs from the lead: "opt_in" (explicit
# consent, the default) or "none" (legitimate interest: anyone who has not withdrawn). Pending double
# opt-ins, withdrawals and suppressed addresses are never sent marketing either way.
CONSENT_REQUIRED_FOR_MARKETING = os.environ.get("CONSENT_REQUIRED_FOR_MARKETING", "opt_in").strip().lower()
if CONSENT_REQUIRED_FOR_MARKETING not in {"opt_in", "none"}:
    raise ImproperlyConfigured(
        f"CONSENT_REQUIRED_FOR_MARKETING must be 'opt_in' or 'none', got {CONSENT_REQUIRED_FOR_MARKETING!r}"
    )
# A double opt-in confirmation link works for this many days.
CONSENT_CONFIRM_MAX_AGE_DAYS = env_int("CONSENT_CONFIRM_MAX_AGE_DAYS", 7)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's parsers plus the one check that no string or key holds a NUL (leadfunnel/validation.py).
    "DEFAULT_PARSER_CLASSES": [
        "leadfunnel.parsers.JSONParser",
        "leadfunnel.parsers.FormParser",
        "leadfunnel.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "leadfunnel.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "intake": None if INTAKE_RATE_LIMIT.lower() == "off" else INTAKE_RATE_LIMIT,
        "track": None if TRACK_RATE_LIMIT.lower() == "off" else TRACK_RATE_LIMIT,
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LeadFunnel API",
    "DESCRIPTION": "Lead intake, scoring, funnel and nurturing for LeadFunnel.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every operation documents the JSON error answers it can give (400/401/403/404/429/503, 413/415).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "leadfunnel.api.add_error_responses",
    ],
    # Swagger UI served from our own static files (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One schema name per shared choice set, whatever the field is called.
    "ENUM_NAME_OVERRIDES": {
        "InteractionTypeEnum": "leads.models.InteractionType",
        "StageEnum": "leads.models.Stage",
        "ChannelEnum": "leads.models.Channel",
        "RejectionReasonEnum": "leads.models.RejectionReason",
        "LossReasonEnum": "leads.models.LossReason",
    },
}

# --- Email --------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.locmem.EmailBackend" if TESTING else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "LeadFunnel <leadfunnel@localhost>")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
# Email providers through django-anymail: set EMAIL_BACKEND to the provider's backend (e.g.
# anymail.backends.mailgun.EmailBackend, anymail.backends.sendgrid.EmailBackend,
# anymail.backends.postmark.EmailBackend) and its settings as ANYMAIL_<NAME> variables, e.g.
# ANYMAIL_MAILGUN_API_KEY, ANYMAIL_MAILGUN_SENDER_DOMAIN, ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY,
# ANYMAIL_SENDGRID_API_KEY, ANYMAIL_POSTMARK_SERVER_TOKEN, and ANYMAIL_WEBHOOK_SECRET
# ("user:password", the basic auth of the tracking webhooks at /anymail/<provider>/tracking/).
# "true"/"false" values become booleans; everything else stays text.
ANYMAIL_PREFIX = "ANYMAIL_"


def _anymail_value(name: str, raw: str):
    if name.endswith(("_API_KEY", "_TOKEN", "_SECRET", "_KEY", "_PASSWORD")):
        return raw
    lowered = raw.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    return raw


ANYMAIL = {
    name[len(ANYMAIL_PREFIX) :]: _anymail_value(name, value)
    for name, value in os.environ.items()
    if name.startswith(ANYMAIL_PREFIX) and len(name) > len(ANYMAIL_PREFIX) and value != ""
}
if "WEBHOOK_SECRET" in ANYMAIL and ":" not in ANYMAIL["WEBHOOK_SECRET"]:
    raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be 'user:password' (several separated by commas)")
# Public base URL used in links inside emails (tracking pixel, clicks, unsubscribe).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- SLA, outgoing webhooks, imports ------------------------------------------
# Hours after an SLA breach before the lead is reassigned to the next rep.
SLA_REASSIGN_AFTER_HOURS = env_int("SLA_REASSIGN_AFTER_HOURS", 4)
# Deliver webhooks to private/loopback addresses (off in production; tests receive on 127.0.0.1).
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=False)
WEBHOOKS_TIMEOUT_SECONDS = env_int("WEBHOOKS_TIMEOUT_SECONDS", 10)
# Retries on timeouts/5xx: exponential backoff from this base, for this long after the event.
WEBHOOKS_RETRY_BASE_SECONDS = env_int("WEBHOOKS_RETRY_BASE_SECONDS", 30)
WEBHOOKS_RETRY_FOR_HOURS = env_int("WEBHOOKS_RETRY_FOR_HOURS", 24)
# Failed attempts in a row after which a subscription is disabled (admins get a notice).
WEBHOOKS_DISABLE_AFTER_FAILURES = env_int("WEBHOOKS_DISABLE_AFTER_FAILURES", 15)
# Days after a lost deal before the lead goes back to marketing by itself ("recycled", the loss
# reason kept in its history); 0 turns the cooling-off rule off (reps still recycle by hand).
LOST_RECYCLE_AFTER_DAYS = env_int("LOST_RECYCLE_AFTER_DAYS", 90)
if LOST_RECYCLE_AFTER_DAYS < 0:
    raise ImproperlyConfigured("LOST_RECYCLE_AFTER_DAYS must be 0 (off) or a number of days.")
# Events from an existing customer that hand sales an expansion opportunity ("service qualified"):
# interaction types, each optionally narrowed to one property value (type:property=value).
EXPANSION_SIGNALS = os.environ.get(
    "EXPANSION_SIGNALS", "upgrade_interest, demo_request, product_usage:feature=seats_limit_reached"
)
for _signal in filter(None, (part.strip() for part in EXPANSION_SIGNALS.split(","))):
    if not re.fullmatch(r"[a-z_]+(:[A-Za-z0-9_.-]+=[^:=]+)?", _signal):
        raise ImproperlyConfigured(f"EXPANSION_SIGNALS: {_signal!r} is not type or type:property=value")
# Funnel API answers are cached this many seconds per query string (0 = always compute).
FUNNEL_CACHE_SECONDS = env_int("FUNNEL_CACHE_SECONDS", 60)
# Parallel workers of a full score recompute (PostgreSQL; SQLite always uses one).
SCORING_RECOMPUTE_WORKERS = env_int("SCORING_RECOMPUTE_WORKERS", 2)
# Where the form intake and the bulk interactions endpoint score: "on" stores the events with a
# row in the scoring queue and a worker scores them after commit, in batches (the request answers
# without scoring's queries); "off" scores inside the request. "auto": on with PostgreSQL and a
# worker (not in eager mode), off for the embedded default and the tests. One interaction posted
# alone is always scored in its request (its answer shows the score).
_SCORING_DEFERRED = os.environ.get("SCORING_DEFERRED", "auto").strip().lower()
if _SCORING_DEFERRED not in ("on", "off", "auto"):
    raise ImproperlyConfigured(f"SCORING_DEFERRED must be on, off or auto, not {_SCORING_DEFERRED!r}")
SCORING_DEFERRED = _SCORING_DEFERRED == "on" or (
    _SCORING_DEFERRED == "auto"
    and DATABASES["default"]["ENGINE"].endswith("postgresql")
    and not CELERY_TASK_ALWAYS_EAGER
)
# Events a worker scores per transaction when draining the queue.
SCORING_DRAIN_BATCH = env_int("SCORING_DRAIN_BATCH", 1000)
IMPORT_BATCH_SIZE = env_int("IMPORT_BATCH_SIZE", 500)

# --- Privacy ----------------------------------------------------------------------
# Days a form submission's raw payload, IP address and user agent are kept (then blanked nightly).
RETENTION_SUBMISSION_DAYS = env_int("RETENTION_SUBMISSION_DAYS", 365)
if RETENTION_SUBMISSION_DAYS < 1:
    raise ImproperlyConfigured(
        f"RETENTION_SUBMISSION_DAYS must be a whole number of days, 1 or more, got {RETENTION_SUBMISSION_DAYS}"
    )
IMPORT_MAX_FILE_MB = env_int("IMPORT_MAX_FILE_MB", 50)

# --- Static files -------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Request limits: a 10 MB body never reaches a parser.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Production hardening (DEBUG off) -----------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# Load balancer and orchestrator probes speak plain HTTP to the container: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
CSRF_FAILURE_VIEW = "leadfunnel.views.csrf_failure"
MEDIA_ROOT = VAR_DIR / "media"
