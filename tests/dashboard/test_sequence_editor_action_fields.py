"""The sequence editor's action steps: plain fields per action, never a JSON box."""

import html

import pytest

from nurturing import services
from nurturing.models import Sequence, Step
from nurturing.services.sequences import _snapshot
from tests.dashboard.html_forms import form_fields

API = "/api/v1/sequences/"


def _new_form(web) -> dict:
    """The new-sequence editor as a browser would post it, its one step turned into an action."""
    posted = form_fields(web.get("/sequences/new/").content.decode(), "sequence-form")
    posted.update(name=["Actions"], step_kind=["action"])
    return posted


def _page(response) -> str:
    return html.unescape(response.content.decode())


CASES = [
    ("set_stage", {"step_stage": ["mql"]}, {"stage": "mql"}),
    (
        "notify_owner",
        {"step_notify_subject": ["{{ lead.full_name }} is warm"], "step_notify_body": ["Call them today."]},
        {"subject": "{{ lead.full_name }} is warm", "body": "Call them today."},
    ),
    ("notify_owner", {"step_notify_subject": [""], "step_notify_body": [""]}, {}),
    ("assign", {"step_owner": ["round_robin"]}, {"owner": "round_robin"}),
    (
        "tag",
        {"step_tag_add": [" nurtured, webinar ,, "], "step_tag_remove": ["cold"]},
        {"add": ["nurtured", "webinar"], "remove": ["cold"]},
    ),
    ("tag", {"step_tag_add": [""], "step_tag_remove": ["cold"]}, {"remove": ["cold"]}),
    (
        "webhook",
        {"step_event": ["lead.warm"], "step_url": ["https://hooks.example/warm"]},
        {"event": "lead.warm", "url": "https://hooks.example/warm"},
    ),
    ("webhook", {"step_event": [""], "step_url": [""]}, {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "fields", "settings"), CASES)
def test_each_actions_fields_save_what_the_api_stores(marketer_web, marketer_client, action, fields, settings):
    posted = _new_form(marketer_web)
    # The other actions' fields are on the page too (hidden by the script); only this action's count.
    posted.update({"step_stage": ["sql"], "step_tag_add": ["ignored"], "step_event": ["ignored"], **fields})
    posted["step_action"] = [action]

    response = marketer_web.post("/sequences/new/", posted)

    assert response.status_code == 302, _page(response)[:3000]
    config = Step.objects.get(sequence__name="Actions").config
    assert config == {"action": action, **settings}
    api = marketer_client.post(
        API, {"name": "By the API", "steps": [{"kind": "action", "action": action, **settings}]}, format="json"
    )
    assert api.status_code == 201, api.json()
    assert Step.objects.get(sequence__name="By the API").config == config


@pytest.mark.django_db
def test_assigning_to_a_chosen_rep_stores_the_reps_id(marketer_web, sales_rep):
    posted = _new_form(marketer_web)
    page = marketer_web.get("/sequences/new/").content.decode()
    assert f'<option value="{sales_rep.pk}" >{sales_rep.username}</option>' in page
    posted.update(step_action=["assign"], step_owner=[str(sales_rep.pk)])

    assert marketer_web.post("/sequences/new/", posted).status_code == 302

    assert Step.objects.get(sequence__name="Actions").config == {"action": "assign", "owner": sales_rep.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("set_stage", {"step_stage": ["king"]}, {"stage": "king"}),
        ("set_stage", {"step_stage": [""]}, {"stage": ""}),
        ("tag", {"step_tag_add": [" , "], "step_tag_remove": [""]}, {}),
        ("assign", {"step_owner": ["999999"]}, {"owner": 999999}),
        ("assign", {"step_owner": ["99999999999999999999"]}, {"owner": 99999999999999999999}),
        ("notify_owner", {"step_notify_subject": ["{% load x %}"]}, {"subject": "{% load x %}"}),
    ],
)
def test_a_bad_value_is_refused_on_its_step_with_the_apis_message(
    marketer_web, marketer_client, action, fields, message
):
    api = marketer_client.post(
        API, {"name": "By the API", "steps": [{"kind": "action", "action": action, **message}]}, format="json"
    )
    assert api.status_code == 400
    api_message = api.json()["errors"]["steps"]["1"][0]
    posted = _new_form(marketer_web)
    posted.update(step_action=[action], **fields)

    response = marketer_web.post("/sequences/new/", posted)

    assert response.status_code == 400
    assert f"Step 1: {api_message}" in _page(response)
    assert not Sequence.objects.exists()


STEPS = [
    {"kind": "action", "action": "set_stage", "stage": "mql", "note": "from the playbook"},
    {"kind": "action", "action": "tag", "add": ["nurtured"], "remove": ["cold", "new"], "source": "editor"},
    {"kind": "action", "action": "webhook", "event": "lead.warm", "url": "https://hooks.example/w", "retries": 3},
    {"kind": "action", "action": "notify_owner", "subject": "Hot: {{ lead.email }}", "priority": "high"},
    {"kind": "action", "action": "assign", "owner": "round_robin", "team": {"region": "emea"}},
]


@pytest.mark.django_db
def test_an_unchanged_save_keeps_every_action_setting_shown_or_not(marketer_web, marketer, sales_rep):
    sequence = services.sequence_create(
        data={"name": "Playbook", "steps": [*STEPS, {**STEPS[4], "owner": sales_rep.pk}]}, actor=marketer
    )
    before = _snapshot(Sequence.objects.get(pk=sequence.pk))
    page = marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    posted = form_fields(page, "sequence-form")
    # Shown keys are in fields; only the others ride along in the hidden step_keep.
    assert [html.unescape(k) for k in posted["step_keep"]] == [
        '{"note": "from the playbook"}',
        '{"source": "editor"}',
        '{"retries": 3}',
        '{"priority": "high"}',
        '{"team": {"region": "emea"}}',
        '{"team": {"region": "emea"}}',
    ]
    assert posted["step_tag_remove"][1] == "cold, new" and posted["step_owner"][5] == str(sales_rep.pk)

    response = marketer_web.post(f"/sequences/{sequence.pk}/edit/", posted)

    assert response.status_code == 302, _page(response)[:3000]
    assert _snapshot(Sequence.objects.get(pk=sequence.pk)) == before


@pytest.mark.django_db
def test_changing_a_field_keeps_the_extra_keys_and_another_action_drops_the_old_settings(marketer_web, marketer):
    sequence = services.sequence_create(data={"name": "Playbook", "steps": STEPS[:2]}, actor=marketer)
    posted = form_fields(marketer_web.get(f"/sequences/{sequence.pk}/edit/").content.decode(), "sequence-form")
    posted["step_stage"] = ["sql", posted["step_stage"][1]]
    posted["step_action"] = ["set_stage", "webhook"]
    posted["step_event"] = ["", "lead.tagged"]

    assert marketer_web.post(f"/sequences/{sequence.pk}/edit/", posted).status_code == 302

    configs = [s.config for s in Step.objects.filter(sequence=sequence).order_by("position")]
    assert configs == [
        {"action": "set_stage", "stage": "sql", "note": "from the playbook"},
        {"action": "webhook", "event": "lead.tagged", "source": "editor"},
    ]


@pytest.mark.django_db
def test_the_editor_has_no_json_box_for_actions(marketer_web, marketer):
    sequence = services.sequence_create(data={"name": "Playbook", "steps": STEPS}, actor=marketer)
    for url in ("/sequences/new/", f"/sequences/{sequence.pk}/edit/"):
        page = marketer_web.get(url).content.decode()
        assert "step_params" not in page and "JSON" not in page.split('id="steps"')[1]
        for name in ("step_stage", "step_notify_subject", "step_notify_body", "step_owner", "step_tag_add"):
            assert f'name="{name}"' in page
        assert 'data-action="set_stage"' in page and 'data-action="webhook"' in page


@pytest.mark.django_db
def test_the_sequence_page_describes_each_action_in_words(marketer_web, marketer):
    sequence = services.sequence_create(data={"name": "Playbook", "steps": STEPS}, actor=marketer)
    page = _page(marketer_web.get(f"/sequences/{sequence.pk}/"))
    steps = page.split('id="step-stats"')[1].split("</ol>")[0]
    for text in (
        "move to MQL",
        "add tags nurtured; remove tags cold, new",
        "webhook event lead.warm",
        "email the owner",
        "give to the next sales rep",
    ):
        assert text in steps
    assert "{" not in steps.replace("{{ lead.email }}", "")
