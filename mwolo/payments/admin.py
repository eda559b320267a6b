from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from mwolo.core.admin import ReadOnlyAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import visible_to

from . import services
from .models import CashSession, Payment, PaymentIntent, PaymentReview, Refund, WebhookCall


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


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["client", "amount", "currency", "method", "reason", "refunded_by", "created_at"]
    list_select_related = ["client", "refunded_by"]
    list_filter = ["method", "currency"]
    search_fields = ["client__number", "reason"]


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
