"""Stage actions — accept, reject, qualify, close, disqualify, mark as MQL — posted from the
detail page, the queue and the pipeline: their forms, the service each one calls, and the answer
(a redirect with a message, or the card htmx swaps in)."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from leadfunnel.errors import DomainError
from leadfunnel.roles import role_required

from .. import dashboard, services
from ..models import LossReason, RejectionReason, Stage
from .cards import _queue_context
from .common import form_error_text, is_htmx, safe_next


class RejectForm(forms.Form):
    reason = forms.ChoiceField(choices=RejectionReason.choices, error_messages={"required": "Pick a reason."})
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


class QualifyForm(forms.Form):
    buying_cycle = forms.CharField(max_length=2000, label="Buying cycle")
    influencer = forms.CharField(max_length=2000, label="Who has influence")
    timeframe = forms.CharField(max_length=200)
    opportunity_size = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0, label="Opportunity size")
    next_step = forms.CharField(max_length=2000, label="Next step (permission given)")
    budget = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)


class CloseForm(forms.Form):
    won = forms.TypedChoiceField(choices=(("1", "Won"), ("0", "Lost")), coerce=lambda v: v == "1")
    reason = forms.ChoiceField(choices=[("", "—"), *LossReason.choices], required=False)
    note = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("won") is False and not data.get("reason"):
            raise forms.ValidationError("Say why the deal was lost.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, error_messages={"required": "Give a reason."})
    reason_code = forms.ChoiceField(choices=[("", "—"), *RejectionReason.choices], required=False)


class RecycleForm(forms.Form):
    reason = forms.CharField(max_length=2000, error_messages={"required": "Say why the lead goes back to marketing."})


def _run_action(action: str, *, lead_id: int, data: dict, user):
    if action == "accept":
        return services.lead_accept(lead=lead_id, actor=user)
    if action == "reject":
        return services.lead_reject(lead=lead_id, actor=user, reason_code=data["reason"], reason=data.get("note", ""))
    if action == "qualify":
        return services.lead_qualify(
            lead=lead_id,
            actor=user,
            buying_cycle=data["buying_cycle"],
            influencer=data["influencer"],
            timeframe=data["timeframe"],
            opportunity_size=data["opportunity_size"],
            next_step=data["next_step"],
            budget=data.get("budget"),
        )
    if action == "close":
        return services.lead_close(
            lead=lead_id, actor=user, won=data["won"], reason_code=data.get("reason", ""), reason=data.get("note", "")
        )
    if action == "disqualify":
        return services.lead_disqualify(
            lead=lead_id, actor=user, reason=data["reason"], reason_code=data.get("reason_code") or "other"
        )
    if action == "mark_mql":
        return services.lead_mark_mql(lead=lead_id, actor=user, reason=data["reason"])
    if action == "recycle":
        return services.lead_recycle(lead=lead_id, actor=user, reason=data["reason"])
    raise Http404("Unknown action.")


ACTION_FORMS = {
    "accept": None,
    "reject": RejectForm,
    "qualify": QualifyForm,
    "close": CloseForm,
    "disqualify": ReasonForm,
    "mark_mql": ReasonForm,
    "recycle": RecycleForm,
}
ACTION_DONE = {
    "accept": "Accepted: the lead is now a SAL in your pipeline.",
    "reject": "Rejected: the lead went back to marketing with your reason.",
    "qualify": "Qualified: the lead is an SQL and has an opportunity.",
    "close": "Closed.",
    "disqualify": "Disqualified.",
    "mark_mql": "Marked as MQL and routed to sales.",
    "recycle": "Sent back to marketing for nurturing; the loss stays in its history.",
}


@require_POST
@role_required(marketer=True, sales=True)
def lead_action(request: HttpRequest, lead_id: int, action: str) -> HttpResponse:
    if action not in ACTION_FORMS:
        raise Http404("Unknown action.")
    form_class = ACTION_FORMS[action]
    form = form_class(request.POST) if form_class else None
    back = safe_next(request, reverse("dashboard:lead", args=[lead_id]))
    error = None
    if form is not None and not form.is_valid():
        error = form_error_text(form)
    else:
        try:
            _run_action(action, lead_id=lead_id, data=form.cleaned_data if form else {}, user=request.user)
        except DomainError as exc:
            error = exc.message
    if is_htmx(request) and request.POST.get("fragment") == "card":
        return _card_response(request, lead_id=lead_id, action=action, error=error, form=form)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, ACTION_DONE[action])
    return redirect(back)


def _card_response(request: HttpRequest, *, lead_id: int, action: str, error: str | None, form) -> HttpResponse:
    """What htmx swaps in for a queue or pipeline card after an action."""
    if error:
        lead = dashboard.lead_for_detail(lead_id=lead_id)
        if lead is None:
            raise Http404("No such lead.")
        template = "sales/_queue_card.html" if lead.stage in (Stage.MQL, Stage.PQL) else "sales/_pipeline_card.html"
        context = _queue_context([lead]) if lead.stage in (Stage.MQL, Stage.PQL) else {}
        card = context.get("cards", [{"lead": lead}])[0] if context else {"lead": lead}
        return render(
            request,
            template,
            {
                "card": card,
                "lead": lead,
                "error": error,
                "rejection_reasons": RejectionReason.choices,
                "loss_reasons": LossReason.choices,
                "qualify_form": form if action == "qualify" else QualifyForm(),
                "open_qualify": action == "qualify",
            },
        )
    return render(request, "sales/_card_done.html", {"message": ACTION_DONE[action], "lead_id": lead_id})
