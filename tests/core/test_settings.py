from django.conf import settings

from ..production import run_production


def test_production_settings_pass_the_deploy_check():
    out = run_production(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {
            "SECRET_KEY": "x7#kq2!vR9zL0pW3mN8bT5yU1cE6hJ4sD2fG7aQ9wE0rT3yU6iO8pA1sD4fG7hJ0",
            "ALLOWED_HOSTS": "edc.example.org",
        },
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "security." not in report, report
    assert "ERRORS" not in report, report


def test_sessions_end_after_inactivity_not_after_two_weeks():
    assert settings.SESSION_COOKIE_AGE <= 30 * 60
    # Renewed by requests, at most once a minute (tests/accounts/test_session_renewal.py).
    assert "accounts.session_guard.SessionRenewalMiddleware" in settings.MIDDLEWARE
    assert settings.USE_TZ


def test_the_production_image_can_collect_its_static_files(tmp_path):
    # The Dockerfile runs collectstatic with the hashed-name storage, which refuses a file that
    # references a missing one (a vendored file's source map did, and broke the image build).
    script = (
        "import django; from django.conf import settings; django.setup(); "
        f"settings.STATIC_ROOT = {str(tmp_path)!r}; "
        "from django.core.management import call_command; "
        "call_command('collectstatic', interactive=False, verbosity=0)"
    )
    out = run_production(
        ["-c", script], {"SECRET_KEY": "build-only", "ALLOWED_HOSTS": "*"}, timeout=180
    )
    assert out.returncode == 0, out.stderr[-3000:]
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/bootstrap/bootstrap.min.css" in manifest
