"""Saving a sequence in the editor keeps every setting, shown or not."""

import pytest

from nurturing import services
from nurturing.models import Sequence
from nurturing.services.sequences import _snapshot
from tests.dashboard.html_forms import form_fields

EVERYTHING = {
    "name": "Weekday nurture",
    "description": "Office hours only",
    "active": True,
    "enroll_on": {"kind": "stage_entered", "stage": "recycled"},
    "stop_on_handoff": False,
    "goals": [{"interaction_type": "demo_request"}],
    "reenroll": "after_exit",
    "send_window_start": "08:30",
    "send_window_end": "17:45",
    "send_days": [0, 1, 2, 3, 4],
    "max_messages_per_day": 2,
    "steps": [
        {"kind": "email", "subject": "Hello {{ lead.first_name }}", "body": "<p>Hi</p>", "reply_to": "team@x.example"},
        {"kind": "wait", "until": {"weekdays": [1, 3], "time": "10:00"}},
        {"kind": "wait", "seconds": 90},
        {"kind": "branch", "condition": {"interaction_type": "email_click"}, "goto": 6, "else_goto": 5},
        {"kind": "sms", "body": "Still there?"},
        {"kind": "action", "action": "tag", "add": ["nurtured"]},
    ],
}


@pytest.mark.django_db
def test_saving_the_editor_unchanged_keeps_every_setting(marketer_web, marketer):
    sequence = services.sequence_create(data=EVERYTHING, actor=marketer)
    before = _snapshot(Sequence.objects.get(pk=sequence.pk))
    page = marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    posted = form_fields(page, "sequence-form")
    assert posted["send_window_start"] == ["08:30"] and posted["send_days"] == ["0", "1", "2", "3", "4"]

    response = marketer_web.post(f"/sequences/{sequence.pk}/edit/", posted)

    assert response.status_code == 302, response.content.decode()[:2000]
    after = _snapshot(Sequence.objects.get(pk=sequence.pk))
    assert after == before
    assert after["send_window_start"] == "08:30" and after["send_days"] == [0, 1, 2, 3, 4]


@pytest.mark.django_db
def test_the_editor_changes_and_clears_the_send_window_and_weekdays(marketer_web, marketer):
    sequence = services.sequence_create(data=EVERYTHING, actor=marketer)
    posted = form_fields(marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode(), "sequence-form")
    posted.update(send_window_start=["09:00"], send_window_end=["12:00"], send_days=["5", "6"])
    assert marketer_web.post(f"/sequences/{sequence.pk}/edit/", posted).status_code == 302
    sequence.refresh_from_db()
    assert (sequence.send_window_start.strftime("%H:%M"), sequence.send_window_end.strftime("%H:%M")) == (
        "09:00",
        "12:00",
    )
    assert sequence.send_days == [5, 6]

    posted.update(send_window_start=[""], send_window_end=[""])
    posted.pop("send_days")
    assert marketer_web.post(f"/sequences/{sequence.pk}/edit/", posted).status_code == 302
    sequence.refresh_from_db()
    assert (sequence.send_window_start, sequence.send_window_end, sequence.send_days) == (None, None, [])


@pytest.mark.django_db
def test_half_a_send_window_is_refused_next_to_the_field(marketer_web, marketer):
    sequence = services.sequence_create(data=EVERYTHING, actor=marketer)
    posted = form_fields(marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode(), "sequence-form")
    posted.update(send_window_end=[""])
    response = marketer_web.post(f"/sequences/{sequence.pk}/edit/", posted)
    assert response.status_code == 400
    assert "Give both send_window_start and send_window_end, or neither." in response.content.decode()
    sequence.refresh_from_db()
    assert sequence.send_window_end.strftime("%H:%M") == "17:45"
