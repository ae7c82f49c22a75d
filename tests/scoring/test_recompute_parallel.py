"""Full recompute over several workers: disjoint lead-id ranges, each resumable, the job's
progress still right, and the same scores as one worker."""

from collections import Counter

import pytest

from leads.models import Interaction, Lead
from scoring import services
from scoring.models import LeadRuleTotal, RecomputeJob, RecomputeRange, ScoreContribution
from scoring.services import recompute
from tests.factories import LeadFactory

RECOMPUTE = "/api/v1/scoring/recompute/"


def _world(make_rule, n: int = 9) -> list[Lead]:
    make_rule(name="Click", interaction_type="email_click", points=5, max_points=12)
    make_rule(
        name="Pricing", interaction_type="page_view", property="url", operator="contains", value="/pricing", points=7
    )
    make_rule(
        name="VP",
        source="profile",
        dimension="fit",
        field="title",
        operator="contains",
        value=["vp"],
        points=30,
    )
    leads = [LeadFactory(title="VP Sales" if i % 3 == 0 else "Analyst") for i in range(n)]
    Interaction.objects.bulk_create(
        [Interaction(lead=lead, type="email_click") for i, lead in enumerate(leads) for _ in range(i % 4)]
        + [Interaction(lead=lead, type="page_view", properties={"url": "https://x.example/pricing"}) for lead in leads]
    )
    return leads


def _scores() -> tuple:
    leads = sorted(Lead.objects.values_list("id", "score", "fit_score", "engagement_score", "engagement_points"))
    contributions = Counter(
        ScoreContribution.objects.values_list("lead_id", "rule_id", "points", "reason", "interaction_id", "field")
    )
    totals = sorted(LeadRuleTotal.objects.values_list("lead_id", "rule_id", "matches", "points"))
    return leads, contributions, totals


@pytest.mark.django_db
def test_ranges_are_disjoint_cover_every_lead_and_sum_up_in_the_job(make_rule):
    leads = _world(make_rule, n=10)
    job = services.scoring_recompute_all(workers=3, batch_size=2, promote=False)
    ranges = list(RecomputeRange.objects.filter(job=job).order_by("after_lead_id"))
    assert len(ranges) == 3
    assert ranges[0].after_lead_id == 0 and ranges[-1].until_lead_id is None
    assert [r.until_lead_id for r in ranges[:-1]] == [r.after_lead_id for r in ranges[1:]]
    assert sum(r.done for r in ranges) == 10 and all(r.finished_at for r in ranges)
    assert sorted(r.done for r in ranges) == [3, 3, 4]
    assert (job.status, job.done, job.total) == ("done", 10, 10)
    assert Lead.objects.filter(pk__in=[x.pk for x in leads], score_updated_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_several_workers_give_what_one_worker_gives(make_rule):
    _world(make_rule)
    services.scoring_recompute_all(workers=1, batch_size=2)
    one = _scores()
    ScoreContribution.objects.all().delete()
    LeadRuleTotal.objects.all().delete()
    Lead.objects.update(score=0, fit_score=0, engagement_score=0, engagement_points=0)
    services.scoring_recompute_all(workers=3, batch_size=2)
    assert _scores() == one


@pytest.mark.django_db
def test_a_failed_range_resumes_where_it_stopped_and_the_progress_api_follows(
    make_rule, marketer_client, monkeypatch, crash_on_batch
):
    leads = _world(make_rule, n=8)
    original = crash_on_batch(3)
    job = RecomputeJob.objects.create(total=8)
    with pytest.raises(RuntimeError):
        services.scoring_recompute_all(job=job, workers=2, batch_size=2)
    job.refresh_from_db()
    # First range (4 leads) done in two batches; the second range's first batch failed.
    assert (job.status, job.done) == ("failed", 4)
    first, second = RecomputeRange.objects.filter(job=job).order_by("after_lead_id")
    assert (first.done, first.finished_at is not None, first.last_lead_id) == (4, True, leads[3].pk)
    assert (second.done, second.finished_at, second.last_lead_id) == (0, None, leads[3].pk)
    body = marketer_client.get(RECOMPUTE).json()
    assert (body["status"], body["done"], body["total"]) == ("failed", 4, 8)

    monkeypatch.setattr(recompute, "_write_batch", original)
    RecomputeJob.objects.filter(pk=job.pk).update(status="pending")
    job = services.scoring_recompute_all(job=job, workers=1, batch_size=2)  # the ranges are kept
    assert (job.status, job.done) == ("done", 8)
    assert RecomputeRange.objects.filter(job=job).count() == 2
    assert not Lead.objects.filter(score_updated_at__isnull=True).exists()
    assert marketer_client.get(RECOMPUTE).json()["done"] == 8


@pytest.mark.django_db
def test_a_single_worker_job_resumed_with_workers_splits_only_what_is_left(make_rule, monkeypatch, crash_on_batch):
    leads = _world(make_rule, n=6)
    original = crash_on_batch(2)
    job = RecomputeJob.objects.create(total=6)
    with pytest.raises(RuntimeError):
        services.scoring_recompute_all(job=job, workers=1, batch_size=2)
    monkeypatch.setattr(recompute, "_write_batch", original)
    RecomputeJob.objects.filter(pk=job.pk).update(status="pending")
    job = services.scoring_recompute_all(job=job, workers=2, batch_size=2)
    assert (job.status, job.done) == ("done", 6)
    ranges = list(RecomputeRange.objects.filter(job=job).order_by("after_lead_id"))
    assert ranges[0].after_lead_id == leads[1].pk and [r.done for r in ranges] == [2, 2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_run_in_parallel_threads_on_committed_data(make_rule, sales_rep):
    """Outside a transaction the ranges run in threads, each with its own connection."""
    import threading

    services.scoring_settings_update(mql_threshold=5, required_profile_fields=[], recompute=False)
    _world(make_rule, n=12)
    seen = set()
    original = recompute._recompute_leads

    def spy(rows, **kwargs):
        seen.add(threading.current_thread().name)
        return original(rows, **kwargs)

    recompute._recompute_leads = spy
    try:
        job = services.scoring_recompute_all(workers=2, batch_size=3)
    finally:
        recompute._recompute_leads = original
    assert len(seen) == 2 and all(name.startswith("recompute") for name in seen)
    assert (job.status, job.done, job.total) == ("done", 12, 12)
    parallel = _scores()
    assert job.promoted == Lead.objects.filter(stage="mql").count() > 0

    services.scoring_recompute_all(workers=1, batch_size=5, promote=False)
    assert _scores()[0] == parallel[0]
    assert _scores()[1] == parallel[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_can_be_forked_processes(make_rule):
    _world(make_rule, n=10)
    job = services.scoring_recompute_all(workers=2, batch_size=2, processes=True, promote=False)
    assert (job.status, job.done, job.total) == ("done", 10, 10)
    assert [r.done for r in RecomputeRange.objects.filter(job=job).order_by("after_lead_id")] == [5, 5]
    forked = _scores()
    services.scoring_recompute_all(workers=1, batch_size=10, promote=False)
    assert _scores()[:2] == forked[:2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_worker_process_fails_the_job_and_it_resumes(make_rule, monkeypatch):
    _world(make_rule, n=6)
    original = recompute._recompute_leads

    def fail_in_the_second_range(rows, **kwargs):
        if rows[0]["id"] > Lead.objects.order_by("pk").values_list("pk", flat=True)[2]:
            raise RuntimeError("worker lost")
        return original(rows, **kwargs)

    monkeypatch.setattr(recompute, "_recompute_leads", fail_in_the_second_range)
    job = RecomputeJob.objects.create(total=6)
    with pytest.raises(RuntimeError, match="RuntimeError: worker lost.*can be resumed"):
        services.scoring_recompute_all(job=job, workers=2, batch_size=3, processes=True)
    job.refresh_from_db()
    assert (job.status, job.done) == ("failed", 3)

    monkeypatch.setattr(recompute, "_recompute_leads", original)
    RecomputeJob.objects.filter(pk=job.pk).update(status="pending")
    job = services.scoring_recompute_all(job=job, workers=2, processes=True)
    assert (job.status, job.done) == ("done", 6)
