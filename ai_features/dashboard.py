"""Moved: the usage dashboard's reads live in usage/dashboard.py (the one usage
page is the usage app's). Kept so older imports keep working."""

from usage.dashboard import *  # noqa: F403
from usage.dashboard import BREAKDOWNS, TRACE_PAGE_SIZE, Filters  # noqa: F401
