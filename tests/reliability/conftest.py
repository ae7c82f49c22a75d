import re
from pathlib import Path

import pytest
from kombu import pools

# What leadfunnel/settings.py sets for a redis:// broker (fail fast, the outbox keeps the work).
REDIS_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 5,
    "max_retries": 1,
    "visibility_timeout": 3600,
}


def _fresh_pools(app) -> None:
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def live_broker(celery_app_on):
    """This process publishes to the private Redis with production transport options.

    celery_app_on's force_close_all() leaves the pool marked closed; publishing then
    fails with "Acquire on closed pool", so the pools are recreated here."""
    old = celery_app_on.conf.broker_transport_options
    celery_app_on.conf.broker_transport_options = dict(REDIS_TRANSPORT_OPTIONS)
    _fresh_pools(celery_app_on)
    yield celery_app_on
    celery_app_on.conf.broker_transport_options = old
    _fresh_pools(celery_app_on)


def mails(*workers) -> list[str]:
    """Recipients of every email the workers' file backends wrote, one entry per email."""
    recipients = []
    for worker in workers:
        folder = Path(worker.log_path.with_suffix(".mail"))
        for path in sorted(folder.glob("*")) if folder.exists() else []:
            recipients += re.findall(r"^To: (.+)$", path.read_text(errors="replace"), flags=re.M)
    return recipients
