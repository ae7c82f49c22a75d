import pytest
from django.contrib.auth.models import Group

from leadfunnel.roles import ROLE_GROUPS


@pytest.fixture(autouse=True)
def _role_groups(db):
    # The groups come from a data migration; make sure they exist however the test DB was built.
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)
