"""The demo / developer machine: SQLite and eager Celery unless the environment says otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)

# Serve static files straight from the app folders (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Two-factor sign-in stays on (base.py): seed_demo enrols the demo accounts and
# `manage.py demo_totp <user>` prints their codes. EDC_REQUIRE_2FA=0 switches it off here,
# and every page then says so in a red banner.
