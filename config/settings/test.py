"""Tests: SQLite by default; PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (CI)."""

from .base import *  # noqa: F403

SECRET_KEY = "test-only-key"
DEBUG = False
# As in production. tests/conftest.py makes client.force_login() a full sign-in (password and
# second factor); the two-factor tests opt out with @pytest.mark.real_sign_in.
EDC_REQUIRE_2FA = True
# Fast hashing: the suite creates many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = BASE_DIR / "test-artifacts" / "media"  # noqa: F405

# Serve static files straight from the app folders (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Django empties the test databases between transactional tests with TRUNCATE, which the
# PostgreSQL triggers refuse unless the session allows it (audit/dbtriggers.py). Only here.
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c edc.allow_truncate=on"  # noqa: F405
