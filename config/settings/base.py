"""Settings shared by every environment. Everything outside the process is read
from the environment (12-factor); see README.md and .env.example."""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("TOLLGATE_SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # BrinIndex on the ledger (usage.models)
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "django_prometheus",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "accounts",
    "usage",
    "billing",
    "ai_features",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.inputguard.InputGuardMiddleware",  # NUL / surrogates / huge numbers → 400
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "config.errors.ApiErrorMiddleware",
    "accounts.middleware.CurrentWorkspaceMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "accounts.middleware_mfa.RequireMfaMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "accounts.context_processors.workspace",
            ],
            "builtins": ["config.formatting"],
        },
    },
]

# --- Data stores -------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'tollgate.sqlite3'}")
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A kept connection is checked before a request reuses it: a PostgreSQL restart
# costs no request an error on a dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default is shared by web, worker and beat: wait for locks.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "tg",
    }
}

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery logs through the LOGGING below (one format on the console).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Auth --------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:dashboard"

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Tollgate] "
ACCOUNT_RATE_LIMITS = {"login_failed": "5/5m/ip,5/5m/key"}
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env("ACCOUNT_DEFAULT_HTTP_PROTOCOL", default="http")
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Tollgate"

# --- Email -------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Tollgate <no-reply@tollgate.local>")

# --- I18N / time --------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static ------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "usage.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsWorkspaceMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.TollgateAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": "Metered AI features: summarize, extract, chat. See API.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets ship in drf-spectacular-sidecar: nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"CapPeriodEnum": "usage.models.CapPeriod"},
}

# --- Logging: one JSON object per line ----------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        # bin/run's console: one readable line per record, same as uvicorn's there.
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "filters": {"no_4xx_tracebacks": {"()": "config.logfilters.No4xxTracebacks"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", default="json"),
            "filters": ["no_4xx_tracebacks"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
    },
}

# --- Metrics -----------------------------------------------------------------
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# --- Tollgate: accounts -------------------------------------------------------
# Where customers write for help: linked from error pages and emails.
TOLLGATE_SUPPORT_EMAIL = env("TOLLGATE_SUPPORT_EMAIL", default="support@tollgate.local")
TOLLGATE_INVITATION_TTL_DAYS = env.int("TOLLGATE_INVITATION_TTL_DAYS", default=7)
TOLLGATE_INVITATIONS_PER_HOUR = env.int("TOLLGATE_INVITATIONS_PER_HOUR", default=30)
# What a suspended workspace's owner may still open: billing (to pay), invoices,
# exports, their data (DESIGN.md "Dunning").
TOLLGATE_SUSPENDED_OWNER_PATHS = env.list(
    "TOLLGATE_SUSPENDED_OWNER_PATHS",
    default=["/billing/", "/api/v1/billing/", "/api/v1/invoices", "/api/v1/exports", "/exports/"],
)
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm"}
ACCOUNT_SIGNUP_REDIRECT_URL = "accounts:dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_NOTIFICATIONS = True  # "your password/email changed" mails
MFA_RECOVERY_CODE_COUNT = 10

# --- Tollgate: usage (the meter) -------------------------------------------------
# Set by the run command when it starts the local demo upstream (no OPENAI_API_KEY).
OPENAI_DEMO_UPSTREAM = env.bool("OPENAI_DEMO_UPSTREAM", default=False)
# The model provider (usage/upstream.py): any OpenAI-compatible server. The key is
# the operator's one org key; it never leaves the SDK client (no log, no page).
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="") or None  # None: api.openai.com
OPENAI_ORG_ID = env("OPENAI_ORG_ID", default="") or None
OPENAI_PROJECT_ID = env("OPENAI_PROJECT_ID", default="") or None
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0)  # per attempt
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)  # 429 / 5xx / connection
OPENAI_MAX_CONNECTIONS = env.int("OPENAI_MAX_CONNECTIONS", default=2000)  # per process
# "max_completion_tokens" (current API) or "max_tokens" (older compatible servers).
OPENAI_MAX_TOKENS_PARAM = env("OPENAI_MAX_TOKENS_PARAM", default="max_completion_tokens")
OPENAI_DEFAULT_MODEL = env("OPENAI_DEFAULT_MODEL", default="gpt-4o-mini")
OPENAI_MODERATION_MODEL = env("OPENAI_MODERATION_MODEL", default="omni-moderation-latest")
# The openai SDK speaks through httpx2, which logs every request at INFO.
LOGGING["loggers"]["httpx2"] = {"level": "WARNING"}
# Who answers "what may this workspace do now" (usage/limits.py); billing replaces it.
TOLLGATE_LIMITS_PROVIDER = env("TOLLGATE_LIMITS_PROVIDER", default="usage.limits.default_limits")
# Called in the transaction that records each usage event (usage/limits.py); "" = none.
TOLLGATE_USAGE_RECORDED_HOOK = ""
TOLLGATE_DEFAULT_INCLUDED_TOKENS = env.int("TOLLGATE_DEFAULT_INCLUDED_TOKENS", default=100_000)
TOLLGATE_DEFAULT_RPM = env.int("TOLLGATE_DEFAULT_RPM", default=600)
TOLLGATE_DEFAULT_TPM = env.int("TOLLGATE_DEFAULT_TPM", default=2_000_000)
# (meter settings continue here)
TOLLGATE_METER_DB_THREADS = env.int("TOLLGATE_METER_DB_THREADS", default=8)  # hot-path DB pool
# Calls admitted at once per process (rate limit, screen, reserve: the steps
# before the upstream call); the rest wait their turn in arrival order. 0 = no
# limit. See usage.metering._admission.
TOLLGATE_METER_ADMITTING = env.int("TOLLGATE_METER_ADMITTING", default=32)
TOLLGATE_KEY_CACHE_SECONDS = env.int("TOLLGATE_KEY_CACHE_SECONDS", default=60)
TOLLGATE_KEY_TOUCH_SECONDS = 60  # last_used_at is written at most this often
TOLLGATE_RATECARD_CACHE_SECONDS = env.int("TOLLGATE_RATECARD_CACHE_SECONDS", default=30)
TOLLGATE_MODERATION_CACHE_SECONDS = env.int("TOLLGATE_MODERATION_CACHE_SECONDS", default=10)
# Moderation verdicts kept per process by content hash, and the window in which
# inputs share one /moderations request (usage.moderation.screen).
TOLLGATE_MODERATION_RESULT_SECONDS = env.int("TOLLGATE_MODERATION_RESULT_SECONDS", default=300)
TOLLGATE_MODERATION_RESULT_ENTRIES = env.int("TOLLGATE_MODERATION_RESULT_ENTRIES", default=10_000)
TOLLGATE_MODERATION_BATCH_MS = env.float("TOLLGATE_MODERATION_BATCH_MS", default=1.0)
# A reservation older than this has lost its request (the process died): the
# recovery task charges it if its call was sent, frees it if not. Longer than the
# longest call (OPENAI_TIMEOUT_SECONDS per attempt x attempts) — see architecture.md.
TOLLGATE_STALE_RESERVATION_MINUTES = env.float("TOLLGATE_STALE_RESERVATION_MINUTES", default=5.0)
# The meter's hard deadline per upstream call (a stream included). A reservation
# or an Idempotency-Key claim older than this can no longer have a call running:
# keep TOLLGATE_STALE_RESERVATION_MINUTES above it.
TOLLGATE_MAX_CALL_SECONDS = env.float("TOLLGATE_MAX_CALL_SECONDS", default=240.0)
# Settles that could not reach PostgreSQL wait here (fsync'd files) until replayed.
TOLLGATE_METER_JOURNAL_DIR = env(
    "TOLLGATE_METER_JOURNAL_DIR", default=str(BASE_DIR / "var" / "meter-journal")
)
# Rate limiting while Redis is down: "local" (a per-process limiter, calls flow),
# "open" (no rate limit) or "closed" (503 service_unavailable).
TOLLGATE_RATELIMIT_WITHOUT_REDIS = env("TOLLGATE_RATELIMIT_WITHOUT_REDIS", default="local")
# The moderation pre-screen: "on" (the default; admin's switch decides, fail-closed)
# or "off" (never screen, e.g. a provider without /v1/moderations).
TOLLGATE_MODERATION = env("TOLLGATE_MODERATION", default="on")
# On SIGTERM: stop taking calls, then wait this long for calls in flight to settle.
TOLLGATE_SHUTDOWN_DRAIN_SECONDS = env.float("TOLLGATE_SHUTDOWN_DRAIN_SECONDS", default=25.0)
# What a 503 service_unavailable asks the client to wait.
TOLLGATE_RETRY_AFTER_SECONDS = env.int("TOLLGATE_RETRY_AFTER_SECONDS", default=2)
TOLLGATE_IDEMPOTENCY_TTL_HOURS = 24
TOLLGATE_IDEMPOTENCY_WAIT_SECONDS = env.float("TOLLGATE_IDEMPOTENCY_WAIT_SECONDS", default=90.0)
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE |= {
    "usage-purge-moderation-logs": {
        "task": "usage.tasks.purge_moderation_logs",
        "schedule": 3600.0,
    },
    "usage-release-stale-reservations": {
        "task": "usage.tasks.release_stale_reservations",  # replays the journal first
        "schedule": 60.0,
    },
    "usage-purge-idempotency-records": {
        "task": "usage.tasks.purge_idempotency_records",
        "schedule": 3600.0,
    },
}

SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {"CapPeriodEnum": "usage.models.CapPeriod"}

# --- Tollgate: billing ------------------------------------------------------------
# Billing answers the meter's "what may this workspace do now" (usage/limits.py).
TOLLGATE_LIMITS_PROVIDER = env(
    "TOLLGATE_LIMITS_PROVIDER", default="billing.limits.workspace_limits"
)
# ...and writes what recorded usage means for billing: overage outbox, alerts.
TOLLGATE_USAGE_RECORDED_HOOK = "billing.services.usage_hooks.on_usage_recorded"
# Stripe: empty key = not configured; billing pages then say so instead of failing.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Point the SDK at a Stripe-compatible server (tests, local demo); empty = api.stripe.com.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_API_VERSION = env("STRIPE_API_VERSION", default="")  # empty = the SDK's pinned version
# Set by the run command when it starts the fake Stripe server (no real charges).
STRIPE_DEMO_MODE = env.bool("STRIPE_DEMO_MODE", default=False)
# The tier a workspace is on without a paid subscription.
BILLING_FREE_TIER_SLUG = env("BILLING_FREE_TIER_SLUG", default="free")
# The Stripe Billing Meter that metered-overage tiers report tokens to.
BILLING_OVERAGE_METER_EVENT = env("BILLING_OVERAGE_METER_EVENT", default="tollgate_overage_tokens")
BILLING_USAGE_ALERT_THRESHOLDS = (50, 80, 100)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("billing.context_processors.billing")
MIDDLEWARE.append("billing.middleware.QuotaRefusalMiddleware")

CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "billing-send-overage-reports": {
        "task": "billing.tasks.send_pending_overage_reports",
        "schedule": 300.0,
    },
    # Before the resend below picks them up: a hook a crash cut short.
    "billing-finish-usage-hooks": {"task": "billing.tasks.finish_usage_hooks", "schedule": 120.0},
    "billing-refresh-due-subscriptions": {
        "task": "billing.tasks.refresh_due_subscriptions",
        "schedule": 900.0,
    },
    "billing-dunning-reminders": {
        "task": "billing.tasks.send_dunning_reminders",
        "schedule": 3600.0,
    },
    "billing-upstream-budget": {"task": "billing.tasks.check_upstream_budget", "schedule": 300.0},
    "billing-reconcile-upstream": {
        "task": "billing.tasks.reconcile_upstream",
        # Nightly, once the upstream has closed the previous UTC day's buckets.
        "schedule": crontab(hour=3, minute=17),
    },
}
# The organization's *admin* key for the Usage and Costs APIs (separate from the
# call key OPENAI_API_KEY); empty: the nightly reconciliation says so once and skips.
OPENAI_ADMIN_KEY = env("OPENAI_ADMIN_KEY", default="")
# Where the admin API lives (default: OPENAI_BASE_URL, i.e. the same upstream).
OPENAI_ADMIN_BASE_URL = env("OPENAI_ADMIN_BASE_URL", default="") or None
# The upstream's id of the call key (key_…) or project (proj_…) whose usage is ours:
# when set, reconciliation compares day x model x that key/project; else day x model.
OPENAI_UPSTREAM_KEY_ID = env("OPENAI_UPSTREAM_KEY_ID", default="")

# --- Tollgate: invoices (the mirror, the PDF archive, billing details) ------------
# The operator as printed on every invoice (the fake Stripe prints these too).
TOLLGATE_OPERATOR_LEGAL_NAME = env("TOLLGATE_OPERATOR_LEGAL_NAME", default="Tollgate Demo Ltd")
# Address lines separated by a literal "\n" (two characters, as in an env file).
TOLLGATE_OPERATOR_ADDRESS_LINES = [
    line.strip()
    for line in env("TOLLGATE_OPERATOR_ADDRESS", default="1 Example Street\\n10115 Berlin")
    .replace("\\n", "\n")
    .splitlines()
    if line.strip()
]
TOLLGATE_OPERATOR_COUNTRY = env("TOLLGATE_OPERATOR_COUNTRY", default="DE")
TOLLGATE_OPERATOR_TAX_ID = env("TOLLGATE_OPERATOR_TAX_ID", default="DE136695976")
TOLLGATE_OPERATOR_EMAIL = env("TOLLGATE_OPERATOR_EMAIL", default="billing@tollgate.local")
# Where archived invoice PDFs go: an alias in STORAGES. Default: the default storage
# (files under MEDIA_ROOT). For S3-compatible storage set
# TOLLGATE_INVOICE_STORAGE_BACKEND=storages.backends.s3.S3Storage (+ django-storages
# and its AWS_* settings / TOLLGATE_INVOICE_STORAGE_OPTIONS as JSON).
TOLLGATE_INVOICE_STORAGE = "default"
if env("TOLLGATE_INVOICE_STORAGE_BACKEND", default=""):
    STORAGES["invoices"] = {
        "BACKEND": env("TOLLGATE_INVOICE_STORAGE_BACKEND"),
        "OPTIONS": env.json("TOLLGATE_INVOICE_STORAGE_OPTIONS", default={}),
    }
    TOLLGATE_INVOICE_STORAGE = "invoices"
# Stored webhook events still unprocessed after this many seconds are re-queued.
TOLLGATE_WEBHOOK_SWEEP_AFTER_SECONDS = env.int("TOLLGATE_WEBHOOK_SWEEP_AFTER_SECONDS", default=60)
CELERY_BEAT_SCHEDULE |= {
    "billing-requeue-stripe-events": {
        "task": "billing.tasks.requeue_unprocessed_events",
        "schedule": 60.0,
    },
    "billing-resync-invoices": {
        "task": "billing.tasks.resync_invoices",
        "schedule": crontab(hour=3, minute=17),
    },
}

# --- Tollgate: ai_features --------------------------------------------------------
# (feature settings go here)
# Uploads (ai_features/documents.py): .txt, .md, .pdf, .docx, checked by content.
TOLLGATE_MAX_UPLOAD_BYTES = env.int("TOLLGATE_MAX_UPLOAD_BYTES", default=10_000_000)  # 10 MB
TOLLGATE_MAX_PDF_PAGES = env.int("TOLLGATE_MAX_PDF_PAGES", default=50)
# Longest input text (typed or extracted), in characters (~50k tokens).
TOLLGATE_MAX_INPUT_CHARS = env.int("TOLLGATE_MAX_INPUT_CHARS", default=200_000)
# The model every feature uses unless TOLLGATE_FEATURE_MODELS names one per slug
# (e.g. TOLLGATE_FEATURE_MODELS="chat=gpt-4.1-mini,extract=gpt-4o-mini").
TOLLGATE_FEATURE_MODEL = env("TOLLGATE_FEATURE_MODEL", default=OPENAI_DEFAULT_MODEL)
TOLLGATE_FEATURE_MODELS = env.dict("TOLLGATE_FEATURE_MODELS", default={})
# Most tokens of conversation history sent with a chat message (older ones are left out).
TOLLGATE_CHAT_HISTORY_TOKENS = env.int("TOLLGATE_CHAT_HISTORY_TOKENS", default=12_000)

# --- Tollgate: finance exports (billing/services/exports.py, config/tabular.py) ---
from celery.schedules import crontab as _crontab  # noqa: E402

# A finished export's file is kept this long, then deleted (the link dies with it).
TOLLGATE_EXPORT_RETENTION_HOURS = env.int("TOLLGATE_EXPORT_RETENTION_HOURS", default=24)
# A download link is valid this long after it was handed out (and never past expiry).
TOLLGATE_EXPORT_LINK_SECONDS = env.int("TOLLGATE_EXPORT_LINK_SECONDS", default=3600)
# Where the worker writes an export before it is stored (None: the system temp dir).
TOLLGATE_EXPORT_TMPDIR = env("TOLLGATE_EXPORT_TMPDIR", default=None)
CELERY_BEAT_SCHEDULE |= {
    "billing-delete-expired-exports": {
        "task": "billing.tasks.delete_expired_exports",
        "schedule": 3600.0,
    },
    # The close pack of the month that just ended (02:30 UTC on the 1st).
    "billing-monthly-close-pack": {
        "task": "billing.tasks.build_monthly_close_pack",
        "schedule": _crontab(day_of_month="1", hour="2", minute="30"),
    },
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    **SPECTACULAR_SETTINGS.get("ENUM_NAME_OVERRIDES", {}),
    "ExportStatusEnum": "billing.models_exports.ExportStatus",
    "ExportFormatEnum": "config.exports.FORMATS",
    "SummaryFormatEnum": "ai_features.features.summarize.FORMATS",
}

# --- Tollgate: privacy (accounts/privacy.py, docs/architecture.md "Privacy") ----------
# Sessions: allauth.usersessions lists a person's sessions and signs out others;
# tracking keeps each session's last-seen time and IP up to date.
USERSESSIONS_TRACK_ACTIVITY = True
# Days between an owner deleting a workspace and its content being erased (undo meanwhile).
TOLLGATE_WORKSPACE_DELETION_GRACE_DAYS = env.int(
    "TOLLGATE_WORKSPACE_DELETION_GRACE_DAYS", default=14
)
# Invoices, credit notes, consent records and the ledger's money figures of a
# deleted workspace are kept (pseudonymized) this long: records of account.
TOLLGATE_LEGAL_RETENTION_YEARS = env.int("TOLLGATE_LEGAL_RETENTION_YEARS", default=10)
# Prompts and answers (chats, summaries, extractions, documents): kept until deleted
# unless this is set (operator-wide) or a workspace chooses fewer days.
TOLLGATE_CONTENT_RETENTION_DAYS = env.int("TOLLGATE_CONTENT_RETENTION_DAYS", default=None)
# Moderation log excerpts: ModerationSettings.log_retention_days (admin, default 30).
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "accounts-enforce-retention": {
        "task": "accounts.tasks.enforce_retention",
        "schedule": 3600.0,
    },
    "accounts-delete-due-workspaces": {
        "task": "accounts.tasks.delete_due_workspaces",
        "schedule": 900.0,
    },
}
