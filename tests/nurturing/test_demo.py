import pytest

from nurturing.demo import seed_demo
from nurturing.models import EmailTemplate, Enrollment, Message, Sequence
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_the_demo_adds_three_sequences_with_enrolments_in_progress_and_is_idempotent(sales_rep):
    LeadFactory.create_batch(5)
    LeadFactory.create_batch(2, stage="recycled")
    LeadFactory.create_batch(2, stage="pql", owner=sales_rep, phone="+4930123456")

    summary = seed_demo()
    again = seed_demo()

    assert "3 sequences (3 new), 9 leads enrolled" in summary
    assert "0 new" in again and "0 leads enrolled" in again
    assert Sequence.objects.count() == 3
    assert "2 email templates (2 new)" in summary and "(0 new)" in again.split("enrolled")[1]
    assert EmailTemplate.objects.count() == 2
    assert Enrollment.objects.count() == 9
    welcome = Sequence.objects.get(name="Welcome: new visitors")
    assert set(Enrollment.objects.filter(sequence=welcome).values_list("status", "current_step")) == {("active", 3)}
    assert Message.objects.filter(sequence=welcome, sent_at__isnull=False).count() == 5
    assert Message.objects.filter(opened_at__isnull=False).exists()
    trial = Sequence.objects.get(name="Trial to paid: PQLs")
    assert Message.objects.filter(sequence=trial, purpose="notification", to=sales_rep.email).count() == 2
