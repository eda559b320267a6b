"""Public site pages. Thin: selectors read, services write, models validate."""

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from mwolo.agencies.selectors import agencies_public_list
from mwolo.core.throttling import PublicFormThrottle
from mwolo.crm.selectors import connection_request_reference_exists
from mwolo.crm.services import connection_request_submit

from .forms import ConnectionRequestForm

FORM_TEMPLATE = "web/connection_request_form.html"


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {"agencies": agencies_public_list()})


def connection_request_create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, FORM_TEMPLATE, {"form": ConnectionRequestForm()})

    if not PublicFormThrottle().allows(request):
        return render(
            request,
            FORM_TEMPLATE,
            {"form": ConnectionRequestForm(request.POST), "throttled": True},
            status=429,
        )
    form = ConnectionRequestForm(request.POST)
    if form.filled_by_a_robot:
        # Nothing is written. A person whose browser filled the hidden field by mistake
        # sees their answers again with a request to send them once more.
        data = request.POST.copy()
        data["website"] = ""
        return render(
            request,
            FORM_TEMPLATE,
            {"form": ConnectionRequestForm(data), "refused": True},
            status=400,
        )
    if form.is_valid():
        try:
            submitted = connection_request_submit(request=form.save(commit=False))
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return redirect("web:connection_request_thanks", reference=submitted.reference)
    return render(request, FORM_TEMPLATE, {"form": form}, status=400)


def connection_request_thanks(request: HttpRequest, reference: str) -> HttpResponse:
    # Only the reference is shown, never who applied: anyone can type this address.
    if not connection_request_reference_exists(reference=reference):
        raise Http404
    return render(request, "web/connection_request_thanks.html", {"reference": reference})


def _add_errors(form: ConnectionRequestForm, error: ValidationError) -> None:
    """Put the service's errors next to their fields; the others at the top of the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
