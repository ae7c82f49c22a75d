"""In Chromium: the condition builder (add rows, save, reload), an action step's own fields, and a
plain-text email whose bare link goes out tracked (composed from a saved template, previewed, sent, clicked)."""

import re

import pytest
from django.core import mail

from leads.models import Interaction
from nurturing import services as nurture
from nurturing.models import EmailTemplate, Enrollment, Sequence
from scoring.models import ScoringRule
from scoring.predictive.models import BacktestJob
from tests.browser.conftest import log_in
from tests.factories import LeadFactory
from tests.predictive.test_backtest import install_current_rules

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_marketer_builds_goals_and_a_branch_condition_from_rows(page, live_server, marketer, shot):
    log_in(page, live_server.url, marketer.username)
    page.goto(f"{live_server.url}/sequences/new/")
    page.fill("#id_name", "Pricing nurture")

    goals = page.locator("#goals-builder")
    goals.get_by_role("button", name="+ Add a goal").click()
    first = goals.locator(".condition-row").nth(0)
    first.locator("select.cond-kind").select_option("interaction")
    assert first.locator('[name="goals-field"]').is_hidden()
    first.locator('[name="goals-interaction_type"]').select_option("page_view")
    first.locator('[name="goals-property"]').fill("url")
    first.locator("select.cond-operator").select_option("contains")
    first.locator('[name="goals-value"]').fill("/pricing")
    goals.get_by_role("button", name="+ Add a goal").click()
    second = goals.locator(".condition-row").nth(1)
    second.locator("select.cond-kind").select_option("stage")
    assert second.locator('[name="goals-value"]').is_hidden()
    second.locator('[name="goals-stage"]').select_option("sql")
    goals.get_by_role("button", name="+ Add a goal").click()
    third = goals.locator(".condition-row").nth(2)
    third.locator("select.cond-kind").select_option("profile")
    third.locator('[name="goals-field"]').fill("score")
    third.locator("select.cond-operator").select_option("present")
    assert third.locator('[name="goals-value"]').is_hidden()
    goals.get_by_role("button", name="+ Add a goal").click()
    goals.locator(".condition-row").nth(3).get_by_role("button", name="Remove condition").click()

    # A second step: a branch on "clicked a link containing pricing", back to step 1 when not.
    page.click("#add-step")
    branch = page.locator(".step-row").nth(1)
    branch.locator("select.step-kind").select_option("branch")
    branch.locator("select.cond-kind").select_option("interaction")
    branch.locator('[name="step_cond-interaction_type"]').select_option("email_click")
    branch.locator('[name="step_cond-property"]').fill("url")
    branch.locator("select.cond-operator").select_option("contains")
    branch.locator('[name="step_cond-value"]').fill("pricing")
    branch.locator('[name="step_goto"]').fill("3")
    page.click("#add-step")
    page.locator(".step-row").nth(2).locator('[name="step_subject"]').fill("Talk to sales?")
    page.locator(".step-row").nth(2).locator('[name="step_body"]').fill("Reply to this email.")
    page.click("text=Save sequence")
    page.wait_for_url(re.compile(r"/sequences/\d+/$"))

    sequence = Sequence.objects.get(name="Pricing nurture")
    assert sequence.goals == [
        {"interaction_type": "page_view", "property": "url", "operator": "contains", "value": "/pricing"},
        {"stage": "sql"},
        {"field": "score", "operator": "present"},
    ]
    branch_step = sequence.steps.get(position=2)
    assert branch_step.config["condition"] == {
        "interaction_type": "email_click",
        "property": "url",
        "operator": "contains",
        "value": "pricing",
    }

    page.goto(f"{live_server.url}/sequences/{sequence.pk}/edit/")
    rows = page.locator("#goals-builder .condition-rows .condition-row")
    assert rows.count() == 3
    assert rows.nth(0).locator('[name="goals-value"]').input_value() == "/pricing"
    assert rows.nth(1).locator('[name="goals-stage"]').input_value() == "sql"
    assert rows.nth(1).locator('[name="goals-field"]').is_hidden()
    assert rows.nth(2).locator('[name="goals-value"]').is_hidden()
    assert page.locator(".step-row").nth(1).locator('[name="step_cond-value"]').input_value() == "pricing"
    shot(page, "sequence-condition-builder")

    # A bad row is refused with the API's message and the stored goals stay as they were.
    rows.nth(0).locator('[name="goals-interaction_type"]').select_option("")
    page.click("text=Save sequence")
    assert "Goal 1: Unknown interaction type" in page.content()
    sequence.refresh_from_db()
    assert len(sequence.goals) == 3


def test_an_action_step_shows_only_the_chosen_actions_fields(page, live_server, marketer, shot):
    log_in(page, live_server.url, marketer.username)
    page.goto(f"{live_server.url}/sequences/new/")
    page.fill("#id_name", "Tag the warm ones")
    step = page.locator(".step-row").nth(0)
    step.locator("select.step-kind").select_option("action")
    assert step.locator('[name="step_stage"]').is_visible()
    assert step.locator('[name="step_tag_add"]').is_hidden() and step.locator('[name="step_subject"]').is_hidden()
    step.locator("select.step-action").select_option("tag")
    assert step.locator('[name="step_stage"]').is_hidden() and step.locator('[name="step_event"]').is_hidden()
    step.locator('[name="step_tag_add"]').fill("warm, webinar")
    step.locator('[name="step_tag_remove"]').fill("cold")
    shot(page, "sequence-action-fields")
    page.click("text=Save sequence")
    page.wait_for_url(re.compile(r"/sequences/\d+/$"))
    step_row = Sequence.objects.get(name="Tag the warm ones").steps.get()
    assert step_row.config == {"action": "tag", "add": ["warm", "webinar"], "remove": ["cold"]}
    assert "add tags warm, webinar; remove tags cold" in page.locator("#step-stats").inner_text()


def test_a_plain_text_email_from_a_template_goes_out_with_a_tracked_bare_link(page, live_server, marketer, shot):
    EmailTemplate.objects.create(
        name="Pricing follow-up",
        subject="{{ lead.first_name }}, our prices",
        body="Hi {{ lead.first_name }},\nhere they are:\n\nhttps://leadfunnel.example/pricing?plan=pro\n\nAna",
    )
    lead = LeadFactory(first_name="Dana", email="dana@acme.example")
    log_in(page, live_server.url, marketer.username)
    page.goto(f"{live_server.url}/sequences/new/")
    page.fill("#id_name", "Pricing, plain")
    page.check("#id_active")
    step = page.locator(".step-row").nth(0)
    step.locator("select.template-pick").select_option(label="Pricing follow-up")
    assert step.locator('[name="step_subject"]').input_value() == "{{ lead.first_name }}, our prices"
    assert "https://leadfunnel.example/pricing?plan=pro" in step.locator('[name="step_body"]').input_value()
    page.click("text=Save sequence")
    page.wait_for_url(re.compile(r"/sequences/\d+/$"))
    sequence = Sequence.objects.get(name="Pricing, plain")

    page.fill("#pv-lead", "dana@acme.example")
    page.click("#preview-form button[type=submit]")
    page.wait_for_selector("#preview-result")
    srcdoc = page.locator("#preview-result iframe").get_attribute("srcdoc")
    assert "<p>Hi Dana,<br>" in srcdoc
    assert re.search(r'<a href="[^"]*/t/c/[^"]+">https://leadfunnel.example/pricing\?plan=pro</a>', srcdoc)
    assert "Tracked links: https://leadfunnel.example/pricing?plan=pro" in page.content()
    shot(page, "plain-text-email-preview")

    nurture.enrollments_create(sequence=sequence, lead_ids=[lead.pk])
    nurture.process_due_steps(batch_size=10)
    [email] = mail.outbox
    html = email.alternatives[0][0]
    href = re.search(r'<a href="([^"]+)">https://leadfunnel.example/pricing\?plan=pro</a>', html).group(1)
    assert "/t/c/" in href
    path = href[href.index("/t/c/") :]
    click = page.request.get(f"{live_server.url}{path}", max_redirects=0)
    assert click.status == 302 and click.headers["location"] == "https://leadfunnel.example/pricing?plan=pro"
    assert Interaction.objects.get(lead=lead, type="email_click").properties["url"] == (
        "https://leadfunnel.example/pricing?plan=pro"
    )
    assert Enrollment.objects.get(lead=lead).current_step == 2


def test_a_marketer_back_tests_rule_changes_built_from_rows(page, live_server, marketer, shot):
    install_current_rules()
    rule = ScoringRule.objects.order_by("pk").first()
    log_in(page, live_server.url, marketer.username)
    page.goto(f"{live_server.url}/scoring/insights/")

    page.locator("#bt-changes").get_by_role("button", name="+ Change a rule").click()
    change = page.locator("#bt-changes .condition-rows > div").nth(0)
    change.locator('[name="change_rule"]').select_option(str(rule.pk))
    change.locator('[name="change_points"]').fill("33")
    page.locator("#bt-new-rules").get_by_role("button", name="+ Add a rule").click()
    new_rule = page.locator("#bt-new-rules .condition-rows > div").nth(0)
    new_rule.locator('[name="add_name"]').fill("Pricing page")
    new_rule.locator('[name="add_points"]').fill("12")
    assert new_rule.locator('[name="add_cond-field"]').is_hidden()
    new_rule.locator('[name="add_cond-interaction_type"]').select_option("page_view")
    new_rule.locator('[name="add_cond-property"]').fill("url")
    new_rule.locator("select.cond-operator").select_option("contains")
    new_rule.locator('[name="add_cond-value"]').fill("/pricing")
    shot(page, "backtest-rule-builder")
    page.click("text=Run back-test")
    page.wait_for_load_state("networkidle")

    job = BacktestJob.objects.get()
    assert job.params["rules_diff"] == {
        "update": [{"id": rule.pk, "points": 33}],
        "add": [
            {
                "name": "Pricing page",
                "dimension": "fit",
                "source": "interaction",
                "interaction_type": "page_view",
                "property": "url",
                "operator": "contains",
                "value": "/pricing",
                "points": 12,
            }
        ],
    }
