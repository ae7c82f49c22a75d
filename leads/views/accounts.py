"""Dashboard pages for accounts and duplicates: the companies list and a company's page, the
possible-duplicates list, the merge preview (two profiles side by side, a choice per differing
field) and a lead's tags."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required

from .. import accounts, duplicates, services
from ..models import Lead
from .common import safe_next

COMPANIES_PAGE_SIZE = 50
ORDERING_LABELS = {
    "-account_score": "Best account score",
    "account_score": "Lowest account score",
    "name": "Name A-Z",
    "-name": "Name Z-A",
    "-people": "Most people",
    "people": "Fewest people",
    "-created_at": "Newest",
}


@require_GET
@role_required(marketer=True, sales=True)
def companies_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:200]
    ordering = request.GET.get("sort", "")
    if ordering not in accounts.COMPANY_ORDERINGS:
        ordering = accounts.COMPANY_ORDERINGS[0]
    page = Paginator(accounts.company_list(search=search, ordering=ordering), COMPANIES_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "leads/companies.html",
        {
            "nav": "companies",
            "page": page,
            "q": search,
            "sort": ordering,
            "sorts": [(key, ORDERING_LABELS[key]) for key in accounts.COMPANY_ORDERINGS],
            "recent_days": accounts.ACCOUNT_RECENT_DAYS,
        },
    )


@require_GET
@role_required(marketer=True, sales=True)
def company_detail(request: HttpRequest, company_id: int) -> HttpResponse:
    try:
        page = accounts.company_get(company_id=company_id)
    except DomainError:
        raise Http404("No such company.") from None
    busiest = max((w["interactions"] for w in page.weeks), default=0) or 1
    weeks = [{**w, "percent": round(100 * w["interactions"] / busiest)} for w in page.weeks]
    return render(
        request,
        "leads/company.html",
        {
            "nav": "companies",
            "company": page.company,
            "leads": page.leads,
            "weeks": weeks,
            "opportunities": page.opportunities,
            "open_pipeline": page.open_pipeline,
            "recent_days": accounts.ACCOUNT_RECENT_DAYS,
            "leads_shown": accounts.COMPANY_LEADS_SHOWN,
        },
    )


@require_GET
@role_required(marketer=True)
def duplicates_list(request: HttpRequest) -> HttpResponse:
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    size = duplicates.DUPLICATES_PAGE_SIZE
    pairs, total = duplicates.duplicate_pairs(limit=size, offset=(number - 1) * size)
    return render(
        request,
        "leads/duplicates.html",
        {
            "nav": "leads",
            "pairs": pairs,
            "total": total,
            "page_number": number,
            "has_next": number * size < total,
        },
    )


def _lead_or_404(lead_id) -> Lead:
    lead = Lead.objects.select_related("company", "owner").filter(pk=lead_id).first()
    if lead is None:
        raise Http404("No such lead.")
    return lead


@require_http_methods(["GET", "POST"])
@role_required(marketer=True)
def lead_merge(request: HttpRequest, lead_id: int) -> HttpResponse:
    """GET: the preview of merging ``?duplicate=`` into this lead (or a picker of its possible
    duplicates); POST: the merge, with the marketer's choice per field."""
    survivor = _lead_or_404(lead_id)
    raw = (request.POST if request.method == "POST" else request.GET).get("duplicate", "").strip()
    if not raw:
        pairs, _ = duplicates.duplicate_pairs(lead_id=lead_id, limit=20)
        candidates = [p.second if p.first.pk == lead_id else p.first for p in pairs]
        return render(
            request,
            "leads/merge.html",
            {"nav": "leads", "survivor": survivor, "candidates": candidates, "pairs": pairs},
        )
    if not raw.isdigit() or int(raw) == lead_id or not Lead.objects.filter(pk=int(raw)).exists():
        messages.error(request, "Choose another existing lead to merge into this one (by its id).")
        return redirect(reverse("dashboard:lead-merge", args=[lead_id]))
    duplicate = _lead_or_404(int(raw))
    if request.method == "POST":
        choices = {
            name: request.POST[f"field_{name}"]
            for name in services.MERGE_FIELDS
            if request.POST.get(f"field_{name}") in ("survivor", "duplicate")
        }
        try:
            result = services.lead_merge(survivor=lead_id, duplicate=duplicate.pk, fields=choices, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect(f"{reverse('dashboard:lead-merge', args=[lead_id])}?duplicate={duplicate.pk}")
        messages.success(
            request,
            f"Merged {result.duplicate_email} into this lead: its history is here, and its email now finds this lead.",
        )
        return redirect(reverse("dashboard:lead", args=[lead_id]))
    preview = services.lead_merge_preview(survivor=survivor, duplicate=duplicate)
    return render(request, "leads/merge.html", {"nav": "leads", "survivor": survivor, "preview": preview})


@require_POST
@role_required(marketer=True)
def lead_tags(request: HttpRequest, lead_id: int) -> HttpResponse:
    """Add (``add``) or remove (``remove``) one tag on this lead; back to the lead page."""
    lead = _lead_or_404(lead_id)
    back = safe_next(request, reverse("dashboard:lead", args=[lead.pk]))
    add, remove = request.POST.get("add", ""), request.POST.get("remove", "")
    try:
        services.leads_tag(
            lead_ids=[lead.pk], add=[add] if add else [], remove=[remove] if remove else [], actor=request.user
        )
    except DomainError as exc:
        messages.error(request, exc.message.split(": ", 1)[-1])
    return redirect(back)
