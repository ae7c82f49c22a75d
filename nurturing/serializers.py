"""Plain input serializers (shape only; rules live in services) and lean output ones."""

from rest_framework import serializers

from leadfunnel.validation import db_integer
from leads.models import Lead

from .models import EnrollmentStatus, ExitReason, Sequence, StepKind


class StepSerializer(serializers.Serializer):
    """A step: ``position`` and ``kind`` plus the kind's own fields (subject/body, minutes,
    condition/goto, action …), flattened."""

    position = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=StepKind.choices)

    def to_representation(self, instance):
        return {"position": instance.position, "kind": instance.kind, **instance.config}


class SequenceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    active = serializers.BooleanField(required=False, default=True)
    enroll_on = serializers.JSONField(required=False, default=dict)
    stop_on_handoff = serializers.BooleanField(required=False, default=True)
    goals = serializers.ListField(child=serializers.JSONField(), required=False, default=list)
    reenroll = serializers.ChoiceField(choices=Sequence.Reenroll.choices, required=False, default="never")
    send_window_start = serializers.TimeField(required=False, allow_null=True, default=None)
    send_window_end = serializers.TimeField(required=False, allow_null=True, default=None)
    send_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, default=list
    )
    max_messages_per_day = db_integer(Sequence, "max_messages_per_day", required=False, allow_null=True, default=None)
    steps = serializers.ListField(child=serializers.DictField(), required=False, default=list, max_length=100)

    def validate_enroll_on(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError('Must be an object like {"kind": "manual"}.')
        return value or {"kind": "manual"}


class SequenceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    active = serializers.BooleanField()
    enroll_on = serializers.JSONField()
    stop_on_handoff = serializers.BooleanField()
    goals = serializers.JSONField()
    reenroll = serializers.CharField()
    # Local times of day ("09:00:00"), documented as text: OpenAPI's "time" format demands an offset.
    send_window_start = serializers.CharField(allow_null=True)
    send_window_end = serializers.CharField(allow_null=True)
    send_days = serializers.ListField(child=serializers.IntegerField())
    max_messages_per_day = serializers.IntegerField(allow_null=True)
    steps = StepSerializer(many=True, source="steps.all")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EnrollmentInputSerializer(serializers.Serializer):
    lead = db_integer(Lead, "id", required=False, min_value=1)
    leads = serializers.ListField(
        child=db_integer(Lead, "id", min_value=1), required=False, max_length=10_000, allow_empty=False
    )
    filter = serializers.DictField(required=False, help_text="stage, min_score, max_score, source, owner, fields")

    def validate(self, attrs):
        given = [key for key in ("lead", "leads", "filter") if key in attrs]
        if len(given) != 1:
            raise serializers.ValidationError('Give exactly one of "lead", "leads" or "filter".')
        return attrs


class EnrollmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = serializers.IntegerField(source="lead_id")
    lead_email = serializers.EmailField(source="lead.email")
    sequence = serializers.IntegerField(source="sequence_id")
    status = serializers.ChoiceField(choices=EnrollmentStatus.choices)
    current_step = serializers.IntegerField()
    next_due_at = serializers.DateTimeField(allow_null=True)
    enrolled_at = serializers.DateTimeField()
    exited_at = serializers.DateTimeField(allow_null=True)
    exit_reason = serializers.ChoiceField(choices=ExitReason.choices, allow_blank=True)
    goal = serializers.JSONField(allow_null=True)
    source = serializers.CharField()


class BulkEnrollmentOutputSerializer(serializers.Serializer):
    enrolled = serializers.IntegerField()
    skipped = serializers.IntegerField()


class AbVariantStatsSerializer(serializers.Serializer):
    subject = serializers.CharField()
    sent = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)


class AbStatsSerializer(serializers.Serializer):
    split = serializers.IntegerField(help_text="Percent of the test group on subject B.")
    test_size = serializers.IntegerField()
    wait_hours = serializers.FloatField()
    winner = serializers.ChoiceField(choices=["a", "b"], allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    variants = serializers.DictField(child=AbVariantStatsSerializer(), help_text="Keyed a and b.")


class StepStatsSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    kind = serializers.CharField()
    executed = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    active = serializers.IntegerField(help_text="Enrolments waiting to run this step.")
    goal_reached = serializers.IntegerField()
    exited = serializers.DictField(child=serializers.IntegerField())
    ab = AbStatsSerializer(allow_null=True, help_text="The A/B subject test of an email step, else null.")


class SequenceStatsSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    enrolled = serializers.IntegerField()
    active = serializers.IntegerField()
    completed = serializers.IntegerField()
    goal_reached = serializers.IntegerField()
    exited = serializers.IntegerField()
    exited_by_reason = serializers.DictField(child=serializers.IntegerField())
    became = serializers.DictField(child=serializers.IntegerField(), help_text="mql, sql, customer after enrolling")
    sent = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    steps = StepStatsSerializer(many=True)


class PreviewSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    kind = serializers.CharField()
    lead = serializers.IntegerField()
    to = serializers.CharField()
    subject = serializers.CharField(allow_blank=True)
    subject_b = serializers.CharField(allow_blank=True, help_text="Subject B of an A/B-tested step, else empty.")
    html = serializers.CharField(allow_blank=True)
    text = serializers.CharField()
    links = serializers.ListField(child=serializers.CharField())


class EmailTemplateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    subject = serializers.CharField(max_length=300)
    body = serializers.CharField(trim_whitespace=False)


class EmailTemplateOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
