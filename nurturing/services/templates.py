"""Writing reusable email templates: checked like an email step (same merge fields, same
sanitiser, same messages), saved whole or not at all."""

from django.db import IntegrityError, transaction

from leadfunnel.audit import audit_record
from leadfunnel.errors import ValidationFailed

from ..models import EmailTemplate
from ..rendering import TemplateError, template_validate

TEMPLATE_FIELDS = ("name", "subject", "body")


def email_template_validate(data: dict) -> dict:
    """Check a full template; raise ValidationFailed (400) naming each field's problem."""
    errors: dict[str, list[str]] = {}
    for field, limit in (("name", 200), ("subject", 300), ("body", None)):
        value = data.get(field)
        if not isinstance(value, str) or not value.strip():
            errors[field] = [f"A template needs a {field}."]
        elif limit and len(value) > limit:
            errors[field] = [f"At most {limit} characters."]
    for field, is_html in (("subject", False), ("body", True)):
        if field not in errors:
            try:
                template_validate(data[field], is_html=is_html)
            except TemplateError as exc:
                errors[field] = [str(exc)]
    if errors:
        field, problems = next(iter(errors.items()))
        raise ValidationFailed(f"{field}: {problems[0]}", fields=errors)
    return data


def _duplicate_name(name: str) -> ValidationFailed:
    message = f"There is already a template named “{name}”."
    return ValidationFailed(f"name: {message}", fields={"name": [message]})


def _save(template: EmailTemplate) -> None:
    if EmailTemplate.objects.filter(name__iexact=template.name).exclude(pk=template.pk).exists():
        raise _duplicate_name(template.name)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:  # the same name saved concurrently
        raise _duplicate_name(template.name) from None


@transaction.atomic
def email_template_create(*, data: dict, actor=None) -> EmailTemplate:
    email_template_validate(data)
    template = EmailTemplate(
        **{field: data[field].strip() if field == "name" else data[field] for field in TEMPLATE_FIELDS},
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _save(template)
    audit_record(actor=actor, action="email_template.created", obj=template, changes={"name": template.name})
    return template


@transaction.atomic
def email_template_update(*, template: EmailTemplate, data: dict, actor=None) -> EmailTemplate:
    """Change some or all of name, subject and body (the result is checked whole)."""
    template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
    before = {field: getattr(template, field) for field in TEMPLATE_FIELDS}
    merged = {**before, **{k: v for k, v in data.items() if k in TEMPLATE_FIELDS}}
    email_template_validate(merged)
    for field in TEMPLATE_FIELDS:
        setattr(template, field, merged[field].strip() if field == "name" else merged[field])
    _save(template)
    changes = {k: {"from": before[k], "to": getattr(template, k)} for k in TEMPLATE_FIELDS if before[k] != merged[k]}
    audit_record(actor=actor, action="email_template.updated", obj=template, changes=changes)
    return template


@transaction.atomic
def email_template_delete(*, template: EmailTemplate, actor=None) -> None:
    """Delete a template; email steps built from it keep their copy of the subject and body."""
    audit_record(actor=actor, action="email_template.deleted", obj=template, changes={"name": template.name})
    template.delete()
