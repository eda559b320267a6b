"""The operators' webhooks: ``POST /api/payments/webhooks/<provider>/[<secret>/]``.

Open to anyone on the internet, so the view does nothing but hand the raw request to
``services.webhook_receive``, which keeps it, authenticates it and confirms it with the
operator before any money is recorded.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from mwolo.core.throttling import client_address

from . import services
from .models import PaymentIntent

MAX_BODY = 64 * 1024  # an operator's callback is a few hundred bytes


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider: str, secret: str | None = None) -> HttpResponse:
    length = request.headers.get("Content-Length") or "0"
    if not length.isdigit():
        return HttpResponse(status=400)
    if int(length) > MAX_BODY:
        return HttpResponse(status=413)
    answer = services.webhook_receive(
        provider=provider,
        path=request.path,
        path_secret=secret,
        headers=dict(request.headers),
        body=request.body[:MAX_BODY],
        remote_address=client_address(request),
    )
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


def intent_status(request: HttpRequest, reference: str) -> HttpResponse:
    """Where a client's browser comes back from an operator's payment page: the status of
    the request only (anyone may type this address: no name, no account shown)."""
    intent = PaymentIntent.objects.filter(reference=reference).first()
    if intent is None:
        raise Http404
    # Money the operator took that a person checks: neither "waiting" nor "nothing taken".
    review = intent.reviews.order_by("-created_at").only("resolved_at").first()
    return render(request, "payments/intent_status.html", {"intent": intent, "review": review})
