"""The public double opt-in page: GET shows what is being confirmed and a button (mail scanners
follow links with GET, so a GET confirms nothing); POST confirms, recording the time and IP."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from ..services.consent import ConsentLinkExpired, ConsentLinkInvalid, consent_confirm, consent_request_from_token
from ..throttles import client_ip


@require_http_methods(["GET", "POST"])
def consent_confirm_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        consent_request = consent_request_from_token(token)
        if request.method == "POST":
            lead = consent_confirm(token=token, ip=client_ip(request) or None)
            return render(request, "consent/confirmed.html", {"email": lead.email})
    except (ConsentLinkInvalid, ConsentLinkExpired) as exc:
        expired = isinstance(exc, ConsentLinkExpired)
        return render(request, "consent/invalid.html", {"message": exc.message, "expired": expired}, status=400)
    return render(
        request,
        "consent/confirm.html",
        {
            "email": consent_request.lead.email,
            "form": consent_request.form,
            "already": consent_request.confirmed_at is not None,
        },
    )
