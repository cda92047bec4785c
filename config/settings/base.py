"""Settings shared by every environment. Everything that differs between machines is read
from the environment (12-factor, as cookiecutter-django does)."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
# A local .env is convenient for developers; production passes real environment variables.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "config.admin.EdcAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "axes",
    # Two-factor sign-in (accounts): TOTP devices and recovery codes (static tokens).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Ours, in layer order (bottom first): an app imports only from the apps listed before it,
    # never from one after it (the `layers` contract in pyproject.toml, run by bin/test).
    # A lower app reaches a higher one only through what the higher app registers in its
    # AppConfig.ready() (core.crf, core.guards, core.trail, audit.integrity).
    "core",
    "trial",
    "audit",
    "accounts",
    "patients",
    "labs",
    "followup",
    "monitoring",
    "reports",
    "exports",
    # The top: the home page and navigation, and the demo data; they read the apps above.
    "dashboard",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # A NUL character in the address is a 400, not a database error.
    "core.nul_guard.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Below SessionMiddleware: renews the idle timeout once a minute, not on every request.
    "accounts.session_guard.SessionRenewalMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Right after authentication: request.user.is_verified() (second factor) for all below.
    "django_otp.middleware.OTPMiddleware",
    # The request's address and browser, for the audit trail and the access log (P11-08).
    "core.request_source.RequestSourceMiddleware",
    # Every page needs a login except those marked @login_not_required (the login page).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After authentication and messages: ends a locked-out or deactivated user's session.
    "accounts.session_guard.SessionGuardMiddleware",
    # After the session guard: a signed-in user without their second factor reaches only the
    # code, enrolment and logout pages (accounts.middleware, EDC_REQUIRE_2FA).
    "accounts.middleware.SecondFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a clear page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (django-csp 4): only this origin's scripts, styles, images and
# connections; no inline script or style anywhere (templates use static/js and classes), so a
# stored payload that escaped escaping still could not run. Bootstrap's CSS draws its icons
# (select arrow, checkbox tick) as data: SVG images. A response that sets its own policy keeps
# it (a consent scan is served with "sandbox", patients.views.consent_document).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "dashboard.context_processors.user_context",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# One request, one transaction: a failing CRF save never leaves half a record behind.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
# A kept connection (CONN_MAX_AGE, production) is tested before each request uses it: after
# a database restart the first request reconnects instead of failing on the dead connection.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# PostgreSQL: the role the application connects as when it is not the one that migrates.
# Set it where migrations run (docker-compose's migrate service): after each migrate that role
# is granted what the app needs and nothing that could switch the audit triggers off
# (audit/dbroles.py). Empty: no grants (development, tests, SQLite).
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Idle sessions end (FDA 2007 guidance on computerised systems): requests renew the session's
# expiry, so SESSION_COOKIE_AGE is an inactivity timeout, not a fixed lifetime. Renewed at most
# once a minute (accounts.session_guard.SessionRenewalMiddleware), not by a write on every
# request: an idle session ends between 29 and 30 minutes after its last request.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_MINUTES", default=30) * 60
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Failed-login lockout (21 CFR 11.300(d)). Failed logins and failed signature passwords
# count; a lockout ends after AXES_COOLOFF_MINUTES, or earlier when an administrator unlocks
# the account with a reason (User access page, recorded as an AuthEvent).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=30)
if AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("AXES_COOLOFF_MINUTES must be 1 or more.")
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
# Counted from the failure that locked the account: tries during the lockout do not prolong it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_PARAMETERS = ["username"]
# A sign-in succeeds when it is complete: after the second factor when EDC_REQUIRE_2FA is on
# (accounts.services.sign_in_complete resets the count then), so signing in again with the
# password alone does not wipe out the failed codes an attacker typed.
AXES_RESET_ON_SUCCESS = False
# Lock the account, not the IP address: clinic staff share one NAT address, and locking it
# would lock out the whole site (axes.W006 asks for ip_address; deliberately not here).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Two-factor sign-in (issue 11; ASVS 4.0 2.7/2.8, 21 CFR 11.300): a time-based code from an
# authenticator app (RFC 6238) after the password, for every user (every study role can see
# identifiers or sign). Production and the tests force it on; a demo or development machine
# may switch it off (EDC_REQUIRE_2FA=0), and every page then says so in a red banner.
EDC_REQUIRE_2FA = env.bool("EDC_REQUIRE_2FA", default=True)
# Shown by the authenticator app next to the account.
OTP_TOTP_ISSUER = "NOA-MSC EDC"
# No drift learning: a code older than one 30-second step (or newer) is refused whatever the
# device's history (django-otp's tolerance of one step either side stays).
OTP_TOTP_SYNC = False
# django-otp's own throttle (kept at its default, stated): after n wrong codes on a device the
# next try is refused for 2^(n-1) seconds. Each wrong code also counts towards the account's
# lockout (AXES_FAILURE_LIMIT), which e-mails the admins.
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# Device keys are never shown in the Django admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# How many one-time recovery codes a user gets at enrolment.
EDC_RECOVERY_CODES = 10

# The request header that carries the client's address into the audit trail. REMOTE_ADDR when
# the app is reached directly; behind the production stack's TLS proxy, HTTP_X_FORWARDED_FOR
# (the address the proxy appended last is used: core/request_source.py).
AUDIT_CLIENT_IP_HEADER = env("AUDIT_CLIENT_IP_HEADER", default="REMOTE_ADDR")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", default="Africa/Cairo")
USE_I18N = True
# Stored times are UTC (ICH E6(R3) 4.2.2(d)); shown in TIME_ZONE with its offset.
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
# A signed consent scan above this is refused as it arrives: core.uploads.SizeLimitUploadHandler
# stops storing it at the limit (the rest of the body is read and discarded, never spooled).
CONSENT_UPLOAD_MAX_MB = env.int("CONSENT_UPLOAD_MAX_MB", default=20)
if CONSENT_UPLOAD_MAX_MB < 1:
    raise ImproperlyConfigured("CONSENT_UPLOAD_MAX_MB must be 1 or more.")
# Django's defaults, stated: form fields other than files may total 2.5 MB; an uploaded file
# above 2.5 MB is spooled to a temporary file instead of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# PDF job files are copies made from the database: deleted this many days after they were
# built (exports.services.pdf_jobs_expire, daily); the job row stays and can be asked again.
PDF_JOB_RETENTION_DAYS = env.int("PDF_JOB_RETENTION_DAYS", default=14)
if PDF_JOB_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("PDF_JOB_RETENTION_DAYS must be 1 or more.")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# A mail server that stops answering fails a reminder in seconds (retried by the next run),
# instead of holding its sender (and its claim) until the task's time limit.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="edc@localhost")

# Celery: Redis is the broker. Without REDIS_URL (the demo), tasks run eagerly in-process.
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL or None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# PDF jobs (exports.tasks.pdf_job_run). The hard time limit in seconds: the worker kills a
# build that runs longer. The soft limit, when the build is stopped with a message to the
# user, comes a minute earlier (a tenth earlier for a limit under ten minutes).
PDF_JOB_TIME_LIMIT = env.int("PDF_JOB_TIME_LIMIT", default=21 * 60)
PDF_JOB_SOFT_TIME_LIMIT = env.int(
    "PDF_JOB_SOFT_TIME_LIMIT", default=PDF_JOB_TIME_LIMIT - min(60, PDF_JOB_TIME_LIMIT // 10)
)
# The process building a job writes a heartbeat this often; a running job whose heartbeat is
# older than PDF_JOB_HEARTBEAT_STALE_SECONDS has lost its worker and is built again.
PDF_JOB_HEARTBEAT_SECONDS = env.int("PDF_JOB_HEARTBEAT_SECONDS", default=10)
PDF_JOB_HEARTBEAT_STALE_SECONDS = env.int(
    "PDF_JOB_HEARTBEAT_STALE_SECONDS", default=6 * PDF_JOB_HEARTBEAT_SECONDS
)
# A job still queued this long after its message was sent is sent again (the message was
# lost: broker restarted without its data, queue purged). A duplicate message is harmless.
PDF_JOB_RESEND_AFTER_SECONDS = env.int("PDF_JOB_RESEND_AFTER_SECONDS", default=10 * 60)
if not 0 < PDF_JOB_SOFT_TIME_LIMIT < PDF_JOB_TIME_LIMIT:
    raise ImproperlyConfigured("PDF_JOB_SOFT_TIME_LIMIT must be above 0 and under the hard one.")
if not 0 < PDF_JOB_HEARTBEAT_SECONDS < PDF_JOB_HEARTBEAT_STALE_SECONDS:
    raise ImproperlyConfigured("PDF_JOB_HEARTBEAT_STALE_SECONDS must exceed the heartbeat.")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis gives a message a worker took but never acknowledged (the worker was killed) to
    # another worker after this long: a little more than the longest job, so a job still
    # being built is not handed out twice (kombu's default is one hour). A killed pool child
    # is faster: its message is requeued at once (reject_on_worker_lost).
    "visibility_timeout": PDF_JOB_TIME_LIMIT + 120,
    # A broker that is down or hung makes a publish fail within seconds, not hang the
    # request (exports.services.pdf_job_send records the job as waiting for the queue).
    "socket_connect_timeout": 3,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
# Long acks_late jobs: a worker reserves no message beyond the ones it is running, so none
# waits unacknowledged behind a 20-minute build (and is redelivered to another worker).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The beat schedule lives here, in one place (issue: reminders).
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    # Daily visit reminders to the coordinators (followup.services.reminders_dispatch).
    "send-visit-reminders": {
        "task": "followup.tasks.send_visit_reminders",
        "schedule": crontab(hour=7, minute=0),
    },
    # Daily: delete PDF job files older than PDF_JOB_RETENTION_DAYS (exports.services).
    "expire-pdf-job-files": {
        "task": "exports.tasks.expire_pdf_job_files",
        "schedule": crontab(hour=3, minute=30),
    },
    # Every minute: send again PDF jobs whose message was never sent (broker down) or lost,
    # and take over jobs whose worker died or ran past the time limit (exports.services).
    "sweep-pdf-jobs": {
        "task": "exports.tasks.sweep_pdf_jobs",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
}
# A reminder claimed (status "sending") longer ago than this was left by a sender that died:
# the next run claims it again and sends it (followup.models.REMINDER_CLAIM). It must be
# longer than any live send, so a reminder held by a live sender is never sent twice: the
# job's hard time limit (CELERY_TASK_TIME_LIMIT) ends a sender well before.
REMINDER_SENDING_STALE_MINUTES = env.int("REMINDER_SENDING_STALE_MINUTES", default=15)
if REMINDER_SENDING_STALE_MINUTES * 60 <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "REMINDER_SENDING_STALE_MINUTES must be longer than CELERY_TASK_TIME_LIMIT."
    )

# Every model of these apps is clinical, or study configuration that decides what clinical data
# means (trial: protocol, sites, memberships, visit definitions, consent versions): audited,
# and on PostgreSQL guarded by triggers (audit/dbtriggers.py) that record changes made outside
# the app and refuse deletion.
AUDITED_APPS = ["trial", "patients", "labs", "followup", "monitoring"]

# Audit-trail review (monitoring/audit_review.py; ICH E6(R3) 4.2.3, EMA 2023 guideline
# §6.2.2): what the review page flags. Out of hours is read in the site's local time: the
# night (from 22:00 to 06:00, across midnight) and the weekend, which in Egypt is Friday and
# Saturday (ISO weekdays 5 and 6, Monday = 1). A site with another weekend changes this.
AUDIT_REVIEW_NIGHT_HOURS = (22, 6)
AUDIT_REVIEW_WEEKEND_DAYS = (5, 6)
# ALCOA "contemporaneous": a form first entered more than this many days after its date.
AUDIT_REVIEW_LATE_ENTRY_DAYS = 14
# A reason for change shorter than this (spaces trimmed) is a weak justification.
AUDIT_REVIEW_WEAK_REASON_CHARS = 10

# The protocol this deployment runs: a data file another protocol of the same shape replaces.
PROTOCOL_FILE = Path(
    env("PROTOCOL_FILE", default=str(BASE_DIR / "trial" / "protocols" / "nct02025270.json"))
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
