"""The segments tests use the dashboard's session clients too."""

from tests.dashboard.conftest import browser_for, marketer_web, rep_web  # noqa: F401
