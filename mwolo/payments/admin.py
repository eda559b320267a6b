from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from mwolo.billing.models import Currency
from mwolo.core.admin import ReadOnlyAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Client

from . import services
from .models import (
    CashSession,
    Method,
    Payment,
    PaymentIntent,
    PaymentReview,
    Refund,
    WebhookCall,
)


def _refusal(error: Exception) -> str:
    if isinstance(error, PermissionDenied):
        return str(_("You are not allowed to do this."))
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(getattr(error, "message", error))


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)


class ResolutionForm(forms.Form):
    note = forms.CharField(label=_("What you checked"), max_length=250)


def _confirm(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    form_class: type[forms.Form],
    title: Any,
) -> TemplateResponse | dict[str, Any]:
    form = form_class(request.POST if "confirm" in request.POST else None)
    if "confirm" in request.POST and form.is_valid():
        return form.cleaned_data
    return TemplateResponse(
        request,
        "admin/payments/action_confirmation.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "opts": model_admin.model._meta,
            "objects": queryset,
            "selected_ids": [row.pk for row in queryset],
            "form": form,
            "action": request.POST.get("action"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


@admin.register(PaymentIntent)
class PaymentIntentAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "client",
        "provider",
        "msisdn",
        "amount",
        "currency",
        "status",
        "created_at",
    ]
    list_filter = ["status", "provider", "purpose"]
    list_select_related = ["client"]
    search_fields = ["reference", "provider_reference", "client__number", "msisdn"]
    date_hierarchy = "created_at"
    readonly_fields = (
        "reference",
        "client",
        "purpose",
        "invoice",
        "meter",
        "provider",
        "msisdn",
        "amount",
        "currency",
        "status",
        "message",
        "provider_reference",
        "pushed_at",
        "push_error",
        "checked_at",
        "expires_at",
        "created_by",
        "created_at",
    )
    fields = readonly_fields
    actions = ["check_now"]

    @admin.action(description=_("Ask the operator now"), permissions=["view"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[PaymentIntent]) -> None:
        for intent in queryset:
            checked = services.payment_intent_check(intent_id=intent.pk)
            self.message_user(
                request, f"{checked.reference}: {checked.get_status_display()}", messages.INFO
            )


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "receipt_number",
        "client",
        "method",
        "amount",
        "currency",
        "credited",
        "account_currency",
        "received_at",
        "status",
    ]
    list_filter = ["method", "status", "currency"]
    list_select_related = ["client"]
    search_fields = ["receipt_number", "operator_transaction_id", "client__number", "payer"]
    date_hierarchy = "received_at"
    readonly_fields = (
        "receipt_number",
        "client",
        "method",
        "amount",
        "currency",
        "credited",
        "account_currency",
        "exchange_rate",
        "operator_transaction_id",
        "payer",
        "intent",
        "cash_session",
        "token",
        "received_at",
        "recorded_by",
        "status",
        "reversed_at",
        "reversed_by",
        "reversal_reason",
        "receipt_link",
    )
    fields = readonly_fields
    actions = ["reverse_payments"]

    @admin.display(description=_("receipt"))
    def receipt_link(self, payment: Payment) -> Any:
        url = reverse("payment-receipt", args=[payment.pk])
        return format_html(
            '<a href="{}">{}</a> · <a href="{}?page=ticket80">{}</a>',
            url,
            _("A4"),
            url,
            _("80 mm ticket"),
        )

    @admin.action(description=_("Reverse the payments"), permissions=["reverse"])
    def reverse_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> Any:
        confirmed = _confirm(self, request, queryset, ReasonForm, _("Reverse payments"))
        if isinstance(confirmed, TemplateResponse):
            return confirmed
        for payment in queryset:
            try:
                services.payment_reverse(
                    payment_id=payment.pk, reason=confirmed["reason"], actor=acting_user(request)
                )
                self.message_user(
                    request, _("%s reversed.") % payment.receipt_number, messages.SUCCESS
                )
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                self.message_user(request, f"{payment}: {_refusal(error)}", messages.ERROR)
        return None

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.reverse_payment")


class TillPaymentInline(admin.TabularInline):
    model = Payment
    fields = ("receipt_number", "client", "amount", "currency", "received_at", "status")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).select_related("client")


@admin.register(CashSession)
class CashSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "cashier",
        "agency",
        "opened_at",
        "closed_at",
        "expected_cdf",
        "counted_cdf",
        "variance_cdf",
        "expected_usd",
        "counted_usd",
        "variance_usd",
    ]
    list_filter = ["agency"]
    list_select_related = ["cashier", "agency"]
    date_hierarchy = "opened_at"
    inlines = [TillPaymentInline]
    readonly_fields = (
        "cashier",
        "agency",
        "opened_at",
        "opening_cdf",
        "opening_usd",
        "closed_at",
        "counted_cdf",
        "counted_usd",
        "expected_cdf",
        "expected_usd",
        "variance_cdf",
        "variance_usd",
        "closing_note",
    )
    fields = readonly_fields

    @admin.display(description=_("variance CDF"))
    def variance_cdf(self, session: CashSession) -> Any:
        return session.variance_cdf

    @admin.display(description=_("variance USD"))
    def variance_usd(self, session: CashSession) -> Any:
        return session.variance_usd


class RefundForm(forms.Form):
    client = forms.ModelChoiceField(label=_("Client"), queryset=Client.objects.none())
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=16,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"class": "form-control", "step": "0.01"}),
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=Currency.choices)
    method = forms.ChoiceField(
        label=_("Given back"),
        choices=Method.choices,
        initial=Method.CASH,
        help_text=_("In cash: from your open till. Otherwise given back outside the platform."),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=300, widget=forms.TextInput(attrs={"class": "form-control"})
    )

    def __init__(
        self, *args: Any, request: HttpRequest, admin_site: admin.AdminSite, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        # Only the clients the user may see; searched as the clients' list searches them
        # (scoped the same way), never a list of every client.
        self.fields["client"] = forms.ModelChoiceField(
            label=_("Client"),
            queryset=visible_to(Client.objects.all(), request.user),
            widget=AutocompleteSelect(Refund._meta.get_field("client"), admin_site),
        )

    def refused(self, error: Exception) -> None:
        """The service's refusal, on the field it names when the form has that field."""
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            for name, problems in error.message_dict.items():
                self.add_error(
                    name if name in self.fields and name != NON_FIELD_ERRORS else None, problems
                )
        else:
            self.add_error(None, _refusal(error))


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """Read-only rows; "add" is a form with a confirmation step that calls the service."""

    list_display = ["client", "amount", "currency", "method", "reason", "refunded_by", "created_at"]
    list_select_related = ["client", "refunded_by"]
    list_filter = ["method", "currency"]
    search_fields = ["client__number", "reason"]
    date_hierarchy = "created_at"
    readonly_fields = (
        "client",
        "amount",
        "currency",
        "method",
        "reason",
        "cash_session",
        "refunded_by",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("payments.add_refund")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """Step one: who, how much, how, why. Step two: the client's credit and the till,
        to confirm. Every rule is the service's (``refund_check`` then ``refund_record``)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        bound = request.method == "POST"
        form = RefundForm(
            request.POST if bound else None,
            initial={"client": request.GET.get("client")},
            request=request,
            admin_site=self.admin_site,
        )
        if bound and form.is_valid() and "edit" not in request.POST:
            data = form.cleaned_data
            arguments = {
                "actor": acting_user(request),
                "client_id": data["client"].pk,
                "amount": data["amount"],
                "currency": data["currency"],
                "method": data["method"],
                "reason": data["reason"],
            }
            try:
                if request.POST.get("confirm") == "yes":
                    refund = services.refund_record(**arguments)
                else:
                    plan = services.refund_check(**arguments)
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                form.refused(error)
            else:
                if request.POST.get("confirm") == "yes":
                    self.message_user(
                        request,
                        _("%(amount)s %(currency)s given back to %(client)s.")
                        % {
                            "amount": number_format(refund.amount, 2, force_grouping=True),
                            "currency": refund.currency,
                            "client": refund.client,
                        },
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:payments_refund_change", args=[refund.pk])
                    )
                return self._page(request, form, plan=plan)
        return self._page(request, form, plan=None)

    def _page(
        self, request: HttpRequest, form: RefundForm, *, plan: services.RefundPlan | None
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/payments/refund_add.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Confirm the refund") if plan else _("Give credit back to a client"),
                "opts": self.model._meta,
                "form": form,
                "plan": plan,
                "method_label": Method(plan.method).label if plan else "",
                "credit_left": plan.credit - plan.amount if plan else None,
                "media": self.media + form.media,
            },
        )


@admin.register(PaymentReview)
class PaymentReviewAdmin(ReadOnlyAdmin):
    list_display = [
        "intent",
        "reason",
        "amount",
        "currency",
        "payer",
        "created_at",
        "resolved_at",
        "resolution",
    ]
    list_select_related = ["intent"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    # The cases still open first, on every database (PostgreSQL puts NULLs last).
    ordering = [F("resolved_at").asc(nulls_first=True), "-created_at"]
    actions = ["record_reported", "refuse_reported"]

    def _resolve(self, request: HttpRequest, queryset: QuerySet, *, accept: bool) -> Any:
        title = _("Record what the operator reports") if accept else _("Record nothing")
        confirmed = _confirm(self, request, queryset, ResolutionForm, title)
        if isinstance(confirmed, TemplateResponse):
            return confirmed
        for review in queryset:
            try:
                services.payment_review_resolve(
                    review_id=review.pk,
                    accept=accept,
                    note=confirmed["note"],
                    actor=acting_user(request),
                )
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                self.message_user(request, f"{review.intent}: {_refusal(error)}", messages.ERROR)
                continue
            if accept:
                receipt = (
                    visible_to(Payment.objects.all(), request.user)
                    .filter(intent_id=review.intent_id)
                    .values_list("receipt_number", flat=True)
                    .first()
                )
                done = _("%(request)s: payment recorded, receipt %(receipt)s.") % {
                    "request": review.intent,
                    "receipt": receipt,
                }
            else:
                done = _("%s: closed, nothing recorded.") % review.intent
            self.message_user(request, done, messages.SUCCESS)
        return None

    @admin.action(description=_("Record the amount the operator reports"), permissions=["change"])
    def record_reported(self, request: HttpRequest, queryset: QuerySet[PaymentReview]) -> Any:
        return self._resolve(request, queryset, accept=True)

    @admin.action(description=_("Record nothing (the operator refunds)"), permissions=["change"])
    def refuse_reported(self, request: HttpRequest, queryset: QuerySet[PaymentReview]) -> Any:
        return self._resolve(request, queryset, accept=False)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("payments.change_paymentreview") and obj is None


@admin.register(WebhookCall)
class WebhookCallAdmin(admin.ModelAdmin):
    """Raw operator calls: for administrators (they may hold personal data)."""

    list_display = ["received_at", "provider", "outcome", "detail", "intent", "remote_address"]
    list_filter = ["provider", "outcome"]
    list_select_related = ["intent"]
    search_fields = ["detail", "body"]
    date_hierarchy = "received_at"
    readonly_fields = (
        "provider",
        "received_at",
        "path",
        "remote_address",
        "headers",
        "body",
        "outcome",
        "detail",
        "intent",
    )
    fields = readonly_fields
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
