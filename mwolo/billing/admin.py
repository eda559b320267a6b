from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from mwolo.core.admin import ReadOnlyAdmin, ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError

from . import services
from .models import (
    AccountEntry,
    Anomaly,
    BillingRun,
    CreditNote,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    Tariff,
    TariffBand,
)
from .pricing import Band
from .selectors import invoices_open_amounts, invoices_visible


class BandFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        bands: list[Band] = [
            (form.cleaned_data.get("up_to_kwh"), form.cleaned_data["price_per_kwh"])
            for form in self.forms
            if "price_per_kwh" in (form.cleaned_data or {}) and not form.cleaned_data.get("DELETE")
        ]
        bands.sort(key=lambda band: (band[0] is None, band[0] or 0))
        services.bands_check(bands)


class BandInline(admin.TabularInline):
    model = TariffBand
    formset = BandFormSet
    extra = 1


class TariffForm(forms.ModelForm):
    class Meta:
        model = Tariff
        fields = [
            "code",
            "name",
            "category",
            "currency",
            "fixed_monthly_charge",
            "vat_rate",
            "social_ceiling_kwh",
            "social_price_per_kwh",
            "payment_terms_days",
            "valid_from",
            "valid_to",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            candidate = Tariff(
                pk=self.instance.pk,
                category=cleaned["category"],
                valid_from=cleaned["valid_from"],
                valid_to=cleaned.get("valid_to"),
            )
            try:
                services.tariff_overlap_check(candidate)
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    form = TariffForm
    list_display = [
        "code",
        "name",
        "category",
        "currency",
        "fixed_monthly_charge",
        "vat_rate",
        "valid_from",
        "valid_to",
    ]
    list_filter = ["category", "currency"]
    search_fields = ["code", "name"]
    inlines = [BandInline]


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ["day", "cdf_per_usd"]
    date_hierarchy = "day"


# --- Billing runs and invoices -------------------------------------------------------------


class BillingRunForm(forms.ModelForm):
    class Meta:
        model = BillingRun
        fields = ["period", "agency", "issue_when_drafted"]
        help_texts = {"issue_when_drafted": _("Issue the ready drafts as soon as all are drafted.")}


@admin.register(BillingRun)
class BillingRunAdmin(ScopedModelAdmin):
    form = BillingRunForm
    list_display = [
        "__str__",
        "status",
        "drafts",
        "to_review",
        "issued",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "agency"]
    list_select_related = ["agency", "created_by"]
    date_hierarchy = "period"
    actions = ["issue_runs", "draft_again"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BillingRun]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                drafts=Count("invoices", filter=Q(invoices__status=Invoice.Status.DRAFT)),
                to_review=Count(
                    "invoices",
                    filter=Q(invoices__status=Invoice.Status.DRAFT, invoices__reviewed_at=None)
                    & ~Q(invoices__anomalies=[]),
                ),
                issued=Count("invoices", filter=~Q(invoices__status=Invoice.Status.DRAFT)),
            )
        )

    @admin.display(description=_("drafts"))
    def drafts(self, run: Any) -> int:
        return run.drafts

    @admin.display(description=_("to review"))
    def to_review(self, run: Any) -> int:
        return run.to_review

    @admin.display(description=_("issued"))
    def issued(self, run: Any) -> int:
        return run.issued

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["period", "agency", "issue_when_drafted", "status"] if obj else []

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and obj is None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: BillingRun, form: Any, change: bool) -> None:
        run = services.billing_run_launch(
            period=obj.period,
            agency_id=obj.agency_id,
            actor=acting_user(request),
            issue=obj.issue_when_drafted,
        )
        obj.pk = run.pk

    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().add_view(request, *args, **kwargs)
        except (ValidationError, ApplicationError, PermissionDenied) as error:
            self.message_user(request, _refusal(error), messages.ERROR)
            return HttpResponseRedirect(request.path)

    @admin.action(description=_("Issue the ready drafts"), permissions=["issue"])
    def issue_runs(self, request: HttpRequest, queryset: QuerySet[BillingRun]) -> None:
        for run in queryset:
            try:
                services.billing_run_issue(run_id=run.pk, actor=acting_user(request))
                self.message_user(request, _("%s: issuing started.") % run, messages.SUCCESS)
            except (ApplicationError, PermissionDenied) as error:
                self.message_user(request, f"{run}: {_refusal(error)}", messages.ERROR)

    @admin.action(description=_("Draft again from today's readings"), permissions=["add"])
    def draft_again(self, request: HttpRequest, queryset: QuerySet[BillingRun]) -> None:
        for run in queryset:
            try:
                services.billing_run_launch(
                    period=run.period, agency_id=run.agency_id, actor=acting_user(request)
                )
                self.message_user(request, _("%s: drafting started.") % run, messages.SUCCESS)
            except (ValidationError, ApplicationError, PermissionDenied) as error:
                self.message_user(request, f"{run}: {_refusal(error)}", messages.ERROR)

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.issue_invoice")


def _refusal(error: Exception) -> str:
    if isinstance(error, PermissionDenied):
        return str(_("You are not allowed to do this."))
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(getattr(error, "message", error))


_LINE_FIELDS = (
    "kind",
    "band_from_kwh",
    "band_to_kwh",
    "quantity",
    "unit_price",
    "amount",
    "vat_rate",
)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = _LINE_FIELDS
    readonly_fields = _LINE_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("What you checked"),
        max_length=300,
        help_text=_("Kept with the invoice, e.g. “Meter inaccessible, estimate accepted”."),
    )


class CreditNoteForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)
    amount = forms.DecimalField(
        label=_("Amount (VAT included)"),
        required=False,
        min_value=Decimal("0.01"),
        decimal_places=2,
        help_text=_("Empty: everything not yet credited, which cancels the invoice."),
    )


class HasAnomaliesFilter(admin.SimpleListFilter):
    title = _("to review")
    parameter_name = "to_review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if self.value() == "yes":
            return queryset.filter(status=Invoice.Status.DRAFT, reviewed_at=None).exclude(
                anomalies=[]
            )
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return invoices_visible(request.user).select_related("client", "site")

    list_display = [
        "__str__",
        "client",
        "site",
        "period",
        "status",
        "total",
        "currency",
        "due_date",
        "anomaly_list",
    ]
    list_filter = ["status", HasAnomaliesFilter, "estimated", "currency", "agency", "period"]
    list_select_related = ["client", "site"]
    search_fields = [
        "number",
        "client__number",
        "client__last_name",
        "client__company_name",
        "site__reference",
    ]
    date_hierarchy = "period"
    inlines = [InvoiceLineInline]
    actions = ["review_invoices", "issue_invoices", "redraft_invoices", "credit_invoices"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "status",
                    "client",
                    "site",
                    "agency",
                    "period",
                    "run",
                    "pdf_link",
                ]
            },
        ),
        (
            _("Consumption"),
            {
                "fields": [
                    "meter",
                    "previous_reading_kwh",
                    "previous_reading_at",
                    "current_reading_kwh",
                    "current_reading_at",
                    "consumption_kwh",
                    "estimated",
                    "estimates_deducted_kwh",
                ]
            },
        ),
        (_("Review"), {"fields": ["anomaly_list", "reviewed_by", "reviewed_at", "review_note"]}),
        (
            _("Amounts"),
            {"fields": ["tariff", "currency", "subtotal", "vat_amount", "total", "open_amount"]},
        ),
        (_("Issue"), {"fields": ["issue_date", "due_date", "issued_at", "issued_by"]}),
    ]
    readonly_fields = [str(field) for _name, options in fieldsets for field in options["fields"]]

    @admin.display(description=_("anomalies"))
    def anomaly_list(self, invoice: Invoice) -> str:
        labels = [str(Anomaly(code).label) for code in invoice.anomalies]
        if labels and invoice.reviewed_at:
            return _("%s (reviewed)") % "; ".join(labels)
        return "; ".join(labels)

    @admin.display(description=_("left to pay"))
    def open_amount(self, invoice: Invoice) -> Any:
        if invoice.status == Invoice.Status.DRAFT:
            return "—"
        return invoices_open_amounts(invoice_ids=[invoice.pk])[invoice.pk]

    @admin.display(description=_("PDF"))
    def pdf_link(self, invoice: Invoice) -> Any:
        if invoice.status == Invoice.Status.DRAFT:
            return "—"
        url = reverse("invoice-pdf", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet[Invoice], form_class: type, title: Any
    ) -> TemplateResponse | dict[str, Any]:
        form = form_class(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            return form.cleaned_data
        return TemplateResponse(
            request,
            "admin/billing/action_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "objects": queryset.select_related("client"),
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _each(self, request: HttpRequest, queryset: QuerySet[Invoice], work: Any) -> int:
        done = 0
        for invoice in queryset:
            try:
                work(invoice)
                done += 1
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                self.message_user(request, f"{invoice}: {_refusal(error)}", messages.ERROR)
        return done

    @admin.action(description=_("Accept the flagged drafts as they are"), permissions=["review"])
    def review_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        confirmed = self._confirm(request, queryset, ReviewForm, _("Accept flagged drafts"))
        if isinstance(confirmed, TemplateResponse):
            return confirmed
        actor = acting_user(request)
        done = self._each(
            request,
            queryset,
            lambda invoice: services.invoice_review(
                invoice_id=invoice.pk, actor=actor, note=confirmed["note"]
            ),
        )
        if done:
            self.message_user(request, _("%d drafts accepted.") % done, messages.SUCCESS)
        return None

    @admin.action(description=_("Issue the selected drafts"), permissions=["issue"])
    def issue_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        try:
            report = services.invoices_issue(
                invoice_ids=list(queryset.values_list("pk", flat=True)),
                actor=acting_user(request),
            )
        except PermissionDenied:
            self.message_user(request, _("You are not allowed to do this."), messages.ERROR)
            return
        if report.issued:
            self.message_user(
                request,
                _("%(count)d invoices issued: %(first)s to %(last)s.")
                % {"count": report.issued, "first": report.numbers[0], "last": report.numbers[-1]},
                messages.SUCCESS,
            )
        if report.held:
            self.message_user(
                request,
                _("%d drafts need a review first: they were not issued.") % report.held,
                messages.WARNING,
            )

    @admin.action(description=_("Draft again from today's readings"), permissions=["issue"])
    def redraft_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        actor = acting_user(request)
        done = self._each(
            request,
            queryset,
            lambda invoice: services.invoice_redraft(invoice_id=invoice.pk, actor=actor),
        )
        if done:
            self.message_user(request, _("%d drafts drafted again.") % done, messages.SUCCESS)

    @admin.action(description=_("Issue a credit note"), permissions=["credit"])
    def credit_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        confirmed = self._confirm(request, queryset, CreditNoteForm, _("Issue credit notes"))
        if isinstance(confirmed, TemplateResponse):
            return confirmed
        actor = acting_user(request)
        notes: list[CreditNote] = []
        self._each(
            request,
            queryset,
            lambda invoice: notes.append(
                services.credit_note_issue(
                    invoice_id=invoice.pk,
                    reason=confirmed["reason"],
                    amount=confirmed["amount"],
                    actor=actor,
                )
            ),
        )
        for note in notes:
            self.message_user(
                request,
                _("Credit note %(number)s: %(total)s %(currency)s.")
                % {"number": note.number, "total": note.total, "currency": note.currency},
                messages.SUCCESS,
            )
        return None

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.review_invoice")

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.issue_invoice")

    def has_credit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.add_creditnote")


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "client", "total", "currency", "issue_date", "issued_by"]
    list_filter = ["currency", "agency"]
    list_select_related = ["invoice", "client", "issued_by"]
    search_fields = ["number", "invoice__number", "client__number", "client__last_name"]
    date_hierarchy = "issue_date"
    readonly_fields = [
        "number",
        "invoice",
        "client",
        "agency",
        "currency",
        "reason",
        "subtotal",
        "vat_amount",
        "total",
        "issue_date",
        "issued_at",
        "issued_by",
        "pdf_link",
    ]
    fields = list(readonly_fields)

    @admin.display(description=_("PDF"))
    def pdf_link(self, note: CreditNote) -> Any:
        url = reverse("credit-note-pdf", args=[note.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))


@admin.register(AccountEntry)
class AccountEntryAdmin(ReadOnlyAdmin):
    list_display = ["booked_at", "client", "kind", "reference", "amount", "currency"]
    list_filter = ["kind", "currency"]
    list_select_related = ["client"]
    search_fields = ["reference", "client__number", "client__last_name", "client__company_name"]
    date_hierarchy = "booked_at"
