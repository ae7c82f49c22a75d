"""Where a person's data is held, and the export of all of it (a read: the erasure, a write, is
``leads.services.privacy``).

Every model that keeps something about a lead declares it (:class:`leadfunnel.privacy.PersonalData`,
a ``personal_data`` class attribute); this module finds the declarations through the app registry,
so nurturing's and scoring's tables (and tables added later) take part without leads importing
their apps. A model that points at a lead without declaring anything gets a cautious default:
its free-text and JSON columns are erased and all its columns exported.
"""

from django.apps import apps
from django.db import models

from leadfunnel.privacy import PersonalData, personal_data_of

from .models import Lead, Suppression
from .services.suppression import suppression_hash

# The lead's own columns in its export (everything but scoring internals), in this order.
PROFILE_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "title",
    "phone",
    "company_name",
    "company_size",
    "industry",
    "country",
    "city",
    "time_zone",
    "linkedin",
    "twitter",
    "custom_fields",
    "tags",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "first_page_url",
    "stage",
    "stage_changed_at",
    "cycle",
    "created_at",
    "updated_at",
    "last_activity_at",
    "erased_at",
)
CONSENT_FIELDS = ("consent", "consent_at", "consent_source", "unsubscribed_at", "email_bounced_at")
SCORE_FIELDS = ("score", "fit_score", "engagement_score", "predicted_probability", "score_updated_at")


def _unique_columns(model) -> set[str]:
    names = {f.name for f in model._meta.concrete_fields if f.unique}
    for constraint in model._meta.constraints:
        names.update(getattr(constraint, "fields", ()) or ())
    for together in model._meta.unique_together:
        names.update(together)
    return names


def _default_declaration(model, lead_path: str) -> PersonalData:
    """For a model pointing at a lead that declares nothing: erase its free text and JSON (not
    choices or keys, which carry structure rather than what a person said). A unique text column
    is set to NULL when it may be; a row keyed by text that may not (an alias, a token) is deleted."""
    unique = _unique_columns(model)
    erase: dict = {}
    delete = False
    for field in model._meta.concrete_fields:
        if field.primary_key or field.is_relation or field.choices:
            continue
        if isinstance(field, models.JSONField):
            erase[field.name] = None if field.null else field.get_default()
        elif isinstance(field, models.GenericIPAddressField):
            if field.null:
                erase[field.name] = None
        elif isinstance(field, (models.CharField, models.TextField)):
            if field.name in unique and not field.null:
                delete = True
            erase[field.name] = None if field.null else ""
    export = tuple(field.attname for field in model._meta.concrete_fields if field.name != lead_path)
    return PersonalData(
        kind=model._meta.label_lower, lead=lead_path, erase={} if delete else erase, delete=delete, export=export
    )


def _relations_to_lead():
    """Every one-to-many or one-to-one relation pointing at Lead, hidden ones (``related_name="+"``)
    included."""
    for relation in Lead._meta.get_fields(include_hidden=True):
        if relation.auto_created and not relation.concrete and (relation.one_to_many or relation.one_to_one):
            yield relation


def personal_data_models() -> list[tuple[type[models.Model], PersonalData]]:
    """Every model holding data about a lead with its declaration (or the default), by kind."""
    found: dict[type[models.Model], PersonalData] = {}
    for model in apps.get_models():
        spec = personal_data_of(model)
        if spec is not None:
            found[model] = spec
    for relation in _relations_to_lead():
        model = relation.related_model
        if model not in found and personal_data_of(model) is None:
            found[model] = _default_declaration(model, relation.field.name)
    return sorted(found.items(), key=lambda item: item[1].kind)


def _rows(model, spec: PersonalData, lead_id: int) -> list[dict]:
    return list(model.objects.filter(**{spec.lead: lead_id}).order_by(*spec.order_by).values(*spec.export))


def lead_export(*, lead_id: int) -> dict:
    """Everything held about the person: profile, consents, score and its reasons, company, and
    every declared kind (submissions, interactions, messages, stage history, enrolments…).

    Queries: the lead, the suppression check, and one per kind of data, whatever its history.
    """
    lead = Lead.objects.filter(pk=lead_id).select_related("company", "owner").first()
    if lead is None:
        return {}
    if lead.erased_at is not None:  # its address went on the list, unlinkable to the row by design
        suppression = {"reason": "erased", "created_at": lead.erased_at}
    else:
        suppression = (
            Suppression.objects.filter(email_hash=suppression_hash(lead.email)).values("reason", "created_at").first()
        )
    document: dict = {
        "format": "leadfunnel.person-export.v1",
        "profile": {name: getattr(lead, name) for name in PROFILE_FIELDS},
        "consents": {
            **{name: getattr(lead, name) for name in CONSENT_FIELDS},
            "suppressed": suppression is not None,
            "suppression_reason": suppression["reason"] if suppression else None,
            "suppressed_at": suppression["created_at"] if suppression else None,
        },
        "score": {name: getattr(lead, name) for name in SCORE_FIELDS},
        "company": (
            {"id": lead.company.pk, "name": lead.company.name, "domain": lead.company.domain} if lead.company else None
        ),
        "owner": lead.owner.get_username() if lead.owner else None,
    }
    for model, spec in personal_data_models():
        if spec.export:
            document[spec.kind] = _rows(model, spec, lead.pk)
    return document
