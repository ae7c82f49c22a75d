"""anymail's ``tracking`` signal (connected in ``NurturingConfig.ready``): the provider's webhook
was signature-checked by anymail's view; this turns its normalised event into ours and hands it to
the service (``nurturing.services.provider_events``)."""

from anymail.signals import AnymailTrackingEvent

from .services.provider_events import TrackingEvent, provider_event_record


def _soft(esp_name: str, raw) -> bool:
    """Bounces a provider marks as temporary though anymail reports them as ``bounced``."""
    if not isinstance(raw, dict):
        return False
    if esp_name == "Postmark":
        return raw.get("Type") == "SoftBounce"
    if esp_name == "SendGrid":
        return raw.get("type") == "blocked"
    return False


def on_tracking_event(sender, event: AnymailTrackingEvent, esp_name: str, **kwargs) -> None:
    provider_event_record(
        event=TrackingEvent(
            esp=esp_name,
            event_type=event.event_type,
            event_id=event.event_id,
            message_id=event.message_id,
            recipient=event.recipient,
            occurred_at=event.timestamp,
            soft=_soft(esp_name, event.esp_event),
            reason=event.mta_response or event.description or event.reject_reason or "",
            click_url=event.click_url,
        )
    )
