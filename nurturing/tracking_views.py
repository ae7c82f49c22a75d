"""The tracking links' endpoints: open pixel, click redirect, one-click unsubscribe (tokens in
:mod:`nurturing.tracking`)."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from leads.services import tracking_link_identify

from .models import Message
from .services import lead_unsubscribe, message_record_click, message_record_open
from .tracking import PIXEL, token_parse


def _message(message_token: str):
    message = Message.objects.select_related("lead").filter(token=message_token).first()
    if message is None:
        raise Http404("Unknown link.")
    return message


@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    message_token, _ = token_parse(token, "o")
    message_record_open(message=_message(message_token))
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    message_token, index = token_parse(token, "c")
    message = _message(message_token)
    if index is None or index >= len(message.links):
        raise Http404("Unknown link.")
    url = message.links[index]
    if not url.lower().startswith(("http://", "https://")):
        raise Http404("Unknown link.")
    message_record_click(message=message, index=index)
    # A link to one of our tracked sites carries the lead's identify token: the site's script
    # (lf-track.js) reads it and the browser's page views are the lead's from then on.
    response = HttpResponseRedirect(tracking_link_identify(url=url, lead_id=message.lead_id))
    response["Cache-Control"] = "no-store, private"
    return response


@csrf_exempt  # RFC 8058 one-click: mail providers POST without a session or CSRF token.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    message_token, _ = token_parse(token, "u")
    message = _message(message_token)
    if request.method == "POST":
        lead_unsubscribe(lead=message.lead, message=message)
        return render(request, "nurturing/unsubscribed.html", {"email": message.lead.email})
    already = message.lead.unsubscribed_at is not None
    return render(
        request, "nurturing/unsubscribe_confirm.html", {"email": message.lead.email, "already": already, "token": token}
    )
