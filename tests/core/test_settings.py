import os
import subprocess
import sys

from django.conf import settings


def test_production_settings_pass_the_deploy_check():
    # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE must not leak into a deployment check.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x7#kq2!vR9zL0pW3mN8bT5yU1cE6hJ4sD2fG7aQ9wE0rT3yU6iO8pA1sD4fG7hJ0",
        "ALLOWED_HOSTS": "edc.example.org",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "security." not in report, report
    assert "ERRORS" not in report, report


def test_sessions_end_after_inactivity_not_after_two_weeks():
    assert settings.SESSION_COOKIE_AGE <= 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST
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
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "build-only",
        "ALLOWED_HOSTS": "*",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/bootstrap/bootstrap.min.css" in manifest
