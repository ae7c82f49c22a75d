"""factory_boy factories. Each app's factories live here so tests share one world."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@leadfunnel.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")


# --- leads -----------------------------------------------------------------------
# (Each app appends its factories below; import them from tests.factories.)
from django.utils import timezone  # noqa: E402

from leads.models import Company, Form, Interaction, Lead, SalesRepProfile, StageTransition  # noqa: E402


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Acme {n}")
    domain = factory.Sequence(lambda n: f"acme{n}.example")
    size_band = "201-1000"
    industry = "Software"
    country = "DE"


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@acme.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    title = "Head of Marketing"
    source = "website"
    channel = "inbound"
    # Opted in to marketing, so nurture sequences send to factory leads; a test about consent
    # builds its lead with consent_status="none" (or pending / opt_out).
    consent = factory.LazyAttribute(lambda lead: lead.consent_status == "opt_in")
    consent_status = "opt_in"
    consent_at = factory.LazyFunction(timezone.now)
    consent_source = "form:factory"


class FormFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Form

    slug = factory.Sequence(lambda n: f"form-{n}")
    name = factory.Sequence(lambda n: f"Form {n}")
    kind = "contact"
    channel = "inbound"
    channel_weight = 5


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interaction

    lead = factory.SubFactory(LeadFactory)
    type = "page_view"
    occurred_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyFunction(lambda: {"url": "https://acme.example/blog"})
    source = "web"


class StageTransitionFactory(factory.django.DjangoModelFactory):
    """For building histories directly in analytics tests (bypasses the service on purpose)."""

    class Meta:
        model = StageTransition

    lead = factory.SubFactory(LeadFactory)
    from_stage = "visitor"
    to_stage = "mql"
    at = factory.LazyFunction(timezone.now)


def sales_rep(username: str, **profile):
    """A user in the sales group, with a routing profile when ``profile`` gives its facts
    (``is_away``, ``capacity``, ``last_assigned_at`` …)."""
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get_or_create(name="sales")[0])
    if profile:
        SalesRepProfile.objects.create(user=user, **profile)
    return user
