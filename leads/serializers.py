"""Input serializers (plain, validate shapes) and lean output serializers for the leads API."""

from django.conf import settings
from rest_framework import serializers

from leadfunnel.audit import audit_record
from leadfunnel.validation import DbDateTimeField, db_integer

from . import tracking
from .intake import PROFILE_FIELDS
from .models import (
    Channel,
    Form,
    Interaction,
    Lead,
    LossReason,
    Opportunity,
    RejectionReason,
    StageTransition,
    TrackedSite,
)


# --- output -------------------------------------------------------------------------------
class LeadOutputSerializer(serializers.ModelSerializer):
    company = serializers.SerializerMethodField(help_text="The company's name (linked company, else as typed).")
    company_domain = serializers.CharField(source="company.domain", default=None, read_only=True, allow_null=True)
    owner_username = serializers.CharField(source="owner.username", default=None, read_only=True, allow_null=True)
    full_name = serializers.CharField(read_only=True)

    class Meta:
        model = Lead
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "full_name",
            "title",
            "phone",
            "company",
            "company_id",
            "company_domain",
            "company_name",
            "company_size",
            "industry",
            "country",
            "city",
            "time_zone",
            "linkedin",
            "twitter",
            "stage",
            "cycle",
            "score",
            "fit_score",
            "engagement_score",
            "predicted_probability",
            "mql_blocked",
            "owner",
            "owner_username",
            "source",
            "channel",
            "first_form_id",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "first_page_url",
            "consent",
            "consent_status",
            "consent_at",
            "consent_source",
            "unsubscribed_at",
            "email_bounced_at",
            "erased_at",
            "custom_fields",
            "tags",
            "created_at",
            "updated_at",
            "stage_changed_at",
            "assigned_at",
            "sla_due_at",
            "sla_breached_at",
            "first_response_at",
            "last_activity_at",
            "score_updated_at",
        )
        read_only_fields = fields

    def get_company(self, lead: Lead) -> str:
        return lead.company.name if lead.company_id and lead.company else lead.company_name


class OpportunityOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Opportunity
        fields = (
            "id",
            "lead",
            "cycle",
            "buying_cycle",
            "influencer",
            "timeframe",
            "opportunity_size",
            "next_step",
            "budget",
            "status",
            "close_reason_code",
            "close_reason",
            "closed_at",
            "created_at",
        )
        read_only_fields = fields


class InteractionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = ("id", "lead", "type", "occurred_at", "received_at", "properties", "source", "external_id")
        read_only_fields = fields


class TimelineItemSerializer(serializers.Serializer):
    """One line of a lead's timeline: an interaction, a message we sent, or a stage change."""

    kind = serializers.ChoiceField(choices=["interaction", "message", "stage_change"])
    at = serializers.DateTimeField()
    id = serializers.IntegerField()
    type = serializers.CharField(required=False, help_text="Interactions and messages: the interaction type.")
    properties = serializers.DictField(required=False)
    source = serializers.CharField(required=False)
    from_stage = serializers.CharField(required=False, help_text="Stage changes: from (blank when the lead entered).")
    to_stage = serializers.CharField(required=False)
    cause = serializers.CharField(required=False)
    cause_ref = serializers.CharField(required=False)
    actor = serializers.CharField(required=False, allow_null=True, help_text="Username of the person, if any.")
    owner = serializers.IntegerField(required=False, allow_null=True)
    reason = serializers.CharField(required=False)
    reason_code = serializers.CharField(required=False)
    cycle = serializers.IntegerField(required=False)
    details = serializers.DictField(required=False)

    def to_representation(self, entry) -> dict:
        item = entry.item
        base = {"kind": entry.kind, "at": serializers.DateTimeField().to_representation(entry.at), "id": item.pk}
        if isinstance(item, StageTransition):
            base.update(
                from_stage=item.from_stage,
                to_stage=item.to_stage,
                cause=item.cause,
                cause_ref=item.cause_ref,
                actor=item.actor.username if item.actor_id and item.actor else None,
                owner=item.owner_id,
                reason=item.reason,
                reason_code=item.reason_code,
                cycle=item.cycle,
                details=item.details,
            )
        else:
            base.update(type=item.type, properties=item.properties, source=item.source)
        return base


class FormSerializer(serializers.ModelSerializer):
    submit_url = serializers.SerializerMethodField()

    class Meta:
        model = Form
        fields = (
            "id",
            "slug",
            "name",
            "kind",
            "channel",
            "channel_weight",
            "allowed_origins",
            "overwrite_profile",
            "double_opt_in",
            "honeypot_field",
            "success_message",
            "redirect_url",
            "active",
            "submit_url",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "submit_url", "created_at", "updated_at")

    def get_submit_url(self, form: Form) -> str:
        return f"{settings.SITE_URL}/api/v1/forms/{form.slug}/submit/"

    def validate_allowed_origins(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError('A list of origins such as https://www.example.com, or ["*"].')
        cleaned = []
        for origin in value:
            if not isinstance(origin, str):
                raise serializers.ValidationError("Each origin must be a string.")
            origin = origin.strip().rstrip("/").lower()
            if origin != "*" and (
                not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1] or " " in origin
            ):
                raise serializers.ValidationError(
                    f'{origin!r} is not an origin (scheme://host[:port], no path), nor "*".'
                )
            cleaned.append(origin)
        return sorted(set(cleaned))

    def validate_honeypot_field(self, value):
        value = value.strip()
        if value in ("email", *PROFILE_FIELDS):
            raise serializers.ValidationError("The honeypot cannot be a real lead field.")
        return value


def save_audited(serializer: serializers.ModelSerializer, *, actor, entity: str, **save_kwargs):
    """Save a validated form/site serializer and audit it as the API and the dashboard both do:
    ``<entity>.created`` with every field, or ``<entity>.updated`` with each changed field as
    ``[before, after]`` (``updated_at`` left out). Returns ``(saved object, its serialized data)``."""
    before = type(serializer)(serializer.instance).data if serializer.instance is not None else None
    obj = serializer.save(**save_kwargs)
    after = type(serializer)(obj).data
    if before is None:
        audit_record(actor=actor, action=f"{entity}.created", obj=obj, changes=after)
    else:
        changes = {k: [before[k], v] for k, v in after.items() if before.get(k) != v and k != "updated_at"}
        audit_record(actor=actor, action=f"{entity}.updated", obj=obj, changes=changes)
    return obj, after


class SiteSerializer(serializers.ModelSerializer):
    """A tracked website: its public key is generated (read-only); ``snippet`` is what to paste."""

    snippet = serializers.SerializerMethodField()
    track_url = serializers.SerializerMethodField()

    class Meta:
        model = TrackedSite
        fields = (
            "id",
            "name",
            "public_key",
            "allowed_origins",
            "active",
            "snippet",
            "track_url",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "public_key", "snippet", "track_url", "created_at", "updated_at")

    def get_snippet(self, site: TrackedSite) -> str:
        return tracking.site_snippet(site.public_key)

    def get_track_url(self, site: TrackedSite) -> str:
        return f"{settings.SITE_URL}/api/v1/track/"

    def validate_allowed_origins(self, value):
        try:
            return tracking.clean_origins(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs):
        if self.instance is None:
            if "allowed_origins" not in attrs:
                raise serializers.ValidationError({"allowed_origins": ["This field is required."]})
            attrs["public_key"] = tracking.new_site_key()
        return attrs


class TrackInputSerializer(serializers.Serializer):
    """Documentation of the page view body the tracking script sends."""

    key = serializers.CharField(help_text="The site's public key.")
    visitor = serializers.CharField(help_text="The anonymous visitor id (the script's first-party cookie).")
    url = serializers.URLField(max_length=tracking.URL_MAX, help_text="The page, on one of the site's origins.")
    title = serializers.CharField(required=False, allow_blank=True)
    referrer = serializers.CharField(required=False, allow_blank=True)
    utm = serializers.DictField(child=serializers.CharField(), required=False, help_text="utm_* of the page URL.")
    identify = serializers.CharField(required=False, help_text="The lf_id of a tracked email link.")


# --- input --------------------------------------------------------------------------------
class FormSubmitInputSerializer(serializers.Serializer):
    """Documentation of the public form body (JSON or form-encoded). Any other field is kept as
    custom data on the lead; stage, score and owner are never taken from the caller."""

    email = serializers.EmailField()
    first_name = serializers.CharField(required=False, max_length=100)
    last_name = serializers.CharField(required=False, max_length=100)
    title = serializers.CharField(required=False, max_length=150)
    company = serializers.CharField(required=False, max_length=200)
    company_size = serializers.CharField(required=False, max_length=20)
    industry = serializers.CharField(required=False, max_length=100)
    country = serializers.CharField(required=False, max_length=100)
    phone = serializers.CharField(required=False, max_length=40)
    consent = serializers.BooleanField(required=False)
    utm_source = serializers.CharField(required=False, max_length=200)
    utm_medium = serializers.CharField(required=False, max_length=200)
    utm_campaign = serializers.CharField(required=False, max_length=200)
    page_url = serializers.CharField(required=False, max_length=2000)
    lf_visitor = serializers.CharField(
        required=False, help_text="The tracking script's visitor id: its earlier page views become the lead's."
    )
    lf_site = serializers.CharField(required=False, help_text="The tracked site's key (with lf_visitor).")


class SubmissionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The submission's id.")


class LeadCreateInputSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    title = serializers.CharField(required=False, allow_blank=True, max_length=150)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    company = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company_size = serializers.CharField(required=False, allow_blank=True, max_length=20)
    industry = serializers.CharField(required=False, allow_blank=True, max_length=100)
    country = serializers.CharField(required=False, allow_blank=True, max_length=100)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    linkedin = serializers.CharField(required=False, allow_blank=True, max_length=200)
    twitter = serializers.CharField(required=False, allow_blank=True, max_length=100)
    consent = serializers.BooleanField(required=False)
    utm_source = serializers.CharField(required=False, allow_blank=True, max_length=200)
    utm_medium = serializers.CharField(required=False, allow_blank=True, max_length=200)
    utm_campaign = serializers.CharField(required=False, allow_blank=True, max_length=200)
    page_url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    source = serializers.CharField(max_length=100, help_text='Where the lead came from, e.g. "tradeshow-2026".')
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)
    custom_fields = serializers.DictField(required=False)

    READ_ONLY = frozenset({"id", "stage", "score", "fit_score", "engagement_score", "owner", "cycle", "sla_due_at"})

    def validate(self, attrs):
        refused = sorted(self.READ_ONLY & set(self.initial_data or {}))
        if refused:
            raise serializers.ValidationError(
                {name: ["Read-only: set by LeadFunnel, not by the caller."] for name in refused}
            )
        return attrs


class LeadPatchInputSerializer(serializers.Serializer):
    """Editable profile fields. Stage, scores, owner and history are read-only: sending them is a 400."""

    email = serializers.CharField(required=False, max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    title = serializers.CharField(required=False, allow_blank=True, max_length=150)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    company = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company_size = serializers.CharField(required=False, allow_blank=True, max_length=20)
    industry = serializers.CharField(required=False, allow_blank=True, max_length=100)
    country = serializers.CharField(required=False, allow_blank=True, max_length=100)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    linkedin = serializers.CharField(required=False, allow_blank=True, max_length=200)
    twitter = serializers.CharField(required=False, allow_blank=True, max_length=100)
    consent = serializers.BooleanField(
        required=False, help_text="Kept for integrations: true opts in, false withdraws."
    )
    consent_status = serializers.ChoiceField(
        choices=["none", "opt_in", "opt_out"], required=False, help_text="pending comes only from a double opt-in form."
    )
    custom_fields = serializers.DictField(required=False)
    # Normalised and checked (length, count) by the service: lower-cased, trimmed, 1-50 characters.
    tags = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False)

    def validate(self, attrs):
        sent = set(self.initial_data or {}) if isinstance(self.initial_data, dict) else set()
        unknown = sorted(sent - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Read-only or unknown field: PATCH changes profile fields only."] for name in unknown}
            )
        return attrs


class InteractionInputSerializer(serializers.Serializer):
    """One event: the lead by id or by email (unknown emails: LEADFUNNEL_UNKNOWN_EMAIL_EVENTS)."""

    lead = db_integer(Lead, "id", required=False, min_value=1)
    email = serializers.CharField(required=False, max_length=254)
    type = serializers.ChoiceField(choices=Interaction._meta.get_field("type").choices)
    occurred_at = DbDateTimeField(required=False)
    properties = serializers.DictField(required=False)
    source = serializers.CharField(required=False, max_length=100)
    external_id = serializers.CharField(required=False, max_length=200)

    def validate(self, attrs):
        if not attrs.get("lead") and not attrs.get("email"):
            raise serializers.ValidationError({"lead": ["Give the lead's id (lead) or its email."]})
        return attrs


class InteractionBulkInputSerializer(serializers.Serializer):
    """Documentation shape of the bulk body; a bare JSON list of events is accepted too."""

    events = InteractionInputSerializer(many=True)


class BulkErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    error = serializers.CharField()


class BulkOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Events already recorded (same source and external_id).")
    errors = BulkErrorSerializer(many=True)
    created_leads = serializers.ListField(
        child=serializers.IntegerField(), help_text="Visitors made for unknown emails."
    )


# --- the sales workflow -----------------------------------------------------------------------
class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class RecycleInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the lost lead is worth nurturing again.")


class RejectInputSerializer(serializers.Serializer):
    reason_code = serializers.ChoiceField(choices=RejectionReason.choices, required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class QualifyInputSerializer(serializers.Serializer):
    buying_cycle = serializers.CharField(max_length=5000)
    influencer = serializers.CharField(max_length=5000)
    timeframe = serializers.CharField(max_length=200)
    opportunity_size = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    next_step = serializers.CharField(max_length=5000)
    budget = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)


class CloseInputSerializer(serializers.Serializer):
    won = serializers.BooleanField()
    reason_code = serializers.ChoiceField(choices=LossReason.choices, required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class QualifyOutputSerializer(serializers.Serializer):
    lead = LeadOutputSerializer()
    opportunity = OpportunityOutputSerializer()
