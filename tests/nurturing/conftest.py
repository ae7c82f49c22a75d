import pytest


def _fresh_pools(app) -> None:
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(celery_app_on):
    """celery_app_on with fresh producer pools: its force_close_all() leaves the pool marked
    closed, and publishing from this process then fails with "Acquire on closed pool"."""
    _fresh_pools(celery_app_on)
    yield celery_app_on
    _fresh_pools(celery_app_on)
