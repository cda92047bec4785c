"""`manage.py check --deploy` is clean, at WARNING level, with the production settings and the
environment docker-compose gives the application (ASVS 4.0 V14.1 build and deploy, V9.1 TLS
for every connection, V3.4 secure cookies)."""

import re
import secrets
import subprocess

from django.conf import settings

from ..production import run_production

# ${NAME:-default}, ${NAME:?message} and ${NAME} as docker compose reads them.
COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def compose_app_environment(given: dict[str, str]) -> dict[str, str]:
    """The `x-app` environment block of docker-compose.yml (web, worker and beat share it),
    with each ${...} resolved as compose would: from `given`, else its default. A required
    variable (`:?`) missing from `given` fails the test, like `docker compose up`."""
    lines = (settings.BASE_DIR / "docker-compose.yml").read_text().splitlines()
    start = lines.index("  environment: &app-env") + 1
    environment = {}
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break  # the block ends at the next key of x-app
        match = re.match(r"^    (\w+): (.*)$", line)
        if not match:
            continue  # comments

        def resolve(m):
            name, op, arg = m["name"], m["op"], m["arg"]
            if name in given:
                return given[name]
            assert op != ":?", f"docker-compose.yml requires {name}: {arg}"
            return arg if op == ":-" else ""

        environment[match[1]] = COMPOSE_VARIABLE.sub(resolve, match[2].strip())
    return environment


def run_deploy_check(environment: dict[str, str]) -> subprocess.CompletedProcess:
    # A clean environment: the deployment is configured by its own environment alone (the
    # test run's DATABASE_URL and the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE do not leak in).
    return run_production(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], environment, clean=True
    )


def test_compose_gives_the_app_the_production_settings_and_https():
    environment = compose_app_environment({"SECRET_KEY": "x"})
    assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert environment["SECURE_SSL_REDIRECT"] == "True"
    assert environment["DATABASE_URL"].startswith("postgres://edc_app:")


def test_check_deploy_is_clean_with_the_compose_environment():
    environment = compose_app_environment(
        {
            # What an operator puts in .env: a long random key and the served host name.
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "edc.example.org",
            "CSRF_TRUSTED_ORIGINS": "https://edc.example.org",
        }
    )
    out = run_deploy_check(environment)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "System check identified no issues" in report, report


def test_check_deploy_refuses_plain_http_without_a_redirect():
    # The check can fail: the same environment without the HTTPS redirect is a warning
    # (security.W008), and --fail-level WARNING turns it into a failed start.
    environment = compose_app_environment(
        {
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "edc.example.org",
            "SECURE_SSL_REDIRECT": "False",
        }
    )
    out = run_deploy_check(environment)
    assert out.returncode != 0
    assert "security.W008" in out.stdout + out.stderr
