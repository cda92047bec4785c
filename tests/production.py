"""The app with its production settings, run in a child process: this test process has the
test settings loaded for good. Used by the deployment, static-files and two-factor checks."""

import os
import subprocess
import sys

from django.conf import settings

# What a process needs to run, for a run configured by its own environment alone.
PROCESS_ONLY = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
# Never inherited: the browser tests' switch has no place in a deployment.
NOT_INHERITED = ("DJANGO_ALLOW_ASYNC_UNSAFE",)


def run_production(
    args: list[str], environment: dict[str, str], *, clean: bool = False, timeout: int = 120
) -> subprocess.CompletedProcess:
    """`python <args>` (["manage.py", "check", ...] or ["-c", script]) with
    config.settings.production and `environment`. `clean`: none of this process's variables
    but PROCESS_ONLY (no DATABASE_URL of the test run), as a deployment starts."""
    if clean:
        env = {k: v for k, v in os.environ.items() if k in PROCESS_ONLY}
    else:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", **environment})
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
