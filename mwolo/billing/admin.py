import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mwolo.core.admin import ReadOnlyAdmin, ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import sees_all_agencies

from . import delivery, services
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
from .selectors import invoices_open_amounts, invoices_visible, invoices_with_overdue


def _money(amount: Decimal, currency: str) -> str:
    """``24 940,00 CDF``: what staff read on the printed invoice (never broken in two)."""
    return f"{number_format(amount, 2, force_grouping=True)}\N{NO-BREAK SPACE}{currency}"


def _month(period: dt.date) -> str:
    return date_format(period, "YEAR_MONTH_FORMAT")


def _percent(rate: Decimal) -> str:
    return f"{number_format((rate * 100).normalize(), force_grouping=True)} %"


def _plain(value: Decimal) -> str:
    """A quantity without the zeros its column pads it with: 50, 0,5161."""
    exact = value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
    return number_format(exact, force_grouping=True)


class PeriodFilter(admin.SimpleListFilter):
    """The months there is something for (a period is the first day of its month)."""

    title = _("period")
    parameter_name = "period"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        periods = (
            model_admin.get_queryset(request)
            .order_by("-period")
            .values_list("period", flat=True)
            .distinct()
        )
        return [(period.isoformat(), _month(period)) for period in periods]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(period=dt.date.fromisoformat(str(value)))
        except ValueError:
            return queryset.none()


# Only the agencies the user sees rows of (the plain filter would list every agency).
AGENCY_FILTER = ("agency", admin.RelatedOnlyFieldListFilter)


# --- Tariffs -------------------------------------------------------------------------------


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
        # The tariff's form has put its social tranche on the instance already.
        services.social_tranche_check(
            bands,
            ceiling_kwh=self.instance.social_ceiling_kwh,
            price_per_kwh=self.instance.social_price_per_kwh,
        )


class BandForm(forms.ModelForm):
    class Meta:
        model = TariffBand
        fields = ["up_to_kwh", "price_per_kwh"]
        localized_fields = "__all__"  # 0,15 as staff write it (0.15 is understood too)


class BandInline(admin.TabularInline):
    model = TariffBand
    form = BandForm
    formset = BandFormSet
    extra = 1


class TariffForm(forms.ModelForm):
    class Meta:
        model = Tariff
        localized_fields = "__all__"
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
        "fixed_charge",
        "vat",
        "valid_from",
        "valid_to",
    ]
    list_filter = ["category", "currency"]
    search_fields = ["code", "name"]
    inlines = [BandInline]

    @admin.display(description=_("fixed monthly charge"), ordering="fixed_monthly_charge")
    def fixed_charge(self, tariff: Tariff) -> str:
        return _money(tariff.fixed_monthly_charge, tariff.currency)

    @admin.display(description=_("VAT rate"), ordering="vat_rate")
    def vat(self, tariff: Tariff) -> str:
        return _percent(tariff.vat_rate)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ["day", "cdf_per_usd"]
    date_hierarchy = "day"


# --- Billing runs --------------------------------------------------------------------------


class BillingRunForm(forms.ModelForm):
    class Meta:
        model = BillingRun
        fields = ["period", "agency", "issue_when_drafted"]
        help_texts = {
            "period": _("The first day of the month billed, e.g. 01/10/2026 for October."),
            "issue_when_drafted": _(
                "Issue each ready invoice as it is drafted; "
                "drafts with anomalies wait for a review."
            ),
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The service checks again; here the error goes on the field the user typed.
        if cleaned.get("period") is not None:
            try:
                services.period_check(cleaned["period"])
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(BillingRun)
class BillingRunAdmin(ScopedModelAdmin):
    form = BillingRunForm
    list_display = [
        "month",
        "agency_name",
        "status",
        "drafts",
        "to_review",
        "issued",
        "created_by",
        "created_at",
    ]
    list_display_links = ["month"]
    list_filter = ["status", AGENCY_FILTER, PeriodFilter]
    list_select_related = ["agency", "created_by"]
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

    @admin.display(description=_("period"), ordering="period")
    def month(self, run: BillingRun) -> str:
        return _month(run.period)

    @admin.display(description=_("agency"), ordering="agency__code")
    def agency_name(self, run: BillingRun) -> str:
        return run.agency.name if run.agency else str(_("all agencies"))

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
        if obj is None:
            return []
        return [
            "period",
            "agency",
            "issue_when_drafted",
            "status",
            "created_by",
            "drafted_at",
            "issued_at",
        ]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "agency" and not sees_all_agencies(request.user):
            # Only administrators bill every agency at once.
            field.required = True
            field.error_messages["required"] = _("Choose your agency.")
            field.help_text = ""  # "empty: every agency" is not theirs to choose
            field.initial = getattr(request.user, "agency_id", None)
        return field

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        # A run is started, then followed in the list: nothing to add next or edit further.
        return super().add_view(
            request,
            form_url,
            {
                **(extra_context or {}),
                "show_save_and_add_another": False,
                "show_save_and_continue": False,
            },
        )

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


def _regenerate(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    regenerate: Any,
) -> TemplateResponse | None:
    """Draw the selected documents' PDFs again, once the person confirmed on the shared
    confirmation page what that does (and does not: the amounts are those of the issue)."""
    form = forms.Form(request.POST if "confirm" in request.POST else None)
    if not form.is_valid():
        documents = list(queryset.select_related("client"))
        return TemplateResponse(
            request,
            "admin/billing/regenerate_confirmation.html",
            {
                **model_admin.admin_site.each_context(request),
                "title": _("Regenerate the PDFs"),
                "opts": model_admin.model._meta,
                "documents": documents,
                "selected_ids": [document.pk for document in documents],
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )
    actor = acting_user(request)
    done = 0
    for document in queryset:
        try:
            regenerate(document.pk, actor)
            done += 1
        except (ApplicationError, PermissionDenied) as error:
            model_admin.message_user(request, f"{document}: {_refusal(error)}", messages.ERROR)
    if done:
        model_admin.message_user(
            request,
            ngettext("%d PDF regenerated.", "%d PDFs regenerated.", done) % done,
            messages.SUCCESS,
        )
    return None


# --- Invoices ------------------------------------------------------------------------------


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    readonly_fields = ["kind", "band", "kwh", "price", "line_amount"]
    fields = list(readonly_fields)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("band (kWh)"))
    def band(self, line: InvoiceLine) -> str:
        low, high = line.band_from_kwh, line.band_to_kwh
        if low is None:
            return ""
        if high is None:
            return _("above %(low)s") % {"low": _plain(low)}
        return _("%(low)s to %(high)s") % {"low": _plain(low), "high": _plain(high)}

    @admin.display(description=_("quantity"))
    def kwh(self, line: InvoiceLine) -> str:
        return _plain(line.quantity)

    @admin.display(description=_("unit price"))
    def price(self, line: InvoiceLine) -> str:
        return _plain(line.unit_price)

    @admin.display(description=_("amount excl. VAT"))
    def line_amount(self, line: InvoiceLine) -> str:
        return number_format(line.amount, 2, force_grouping=True)


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("What you checked"),
        max_length=300,
        help_text=_("Kept with the invoice, e.g. “Meter inaccessible, estimate accepted”."),
        widget=forms.TextInput(attrs={"size": 60}),
    )


class CreditNoteForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=300, widget=forms.TextInput(attrs={"size": 60})
    )
    amount = forms.DecimalField(
        label=_("Amount (VAT included)"),
        required=False,
        min_value=Decimal("0.01"),
        decimal_places=2,
        localize=True,
        error_messages={"min_value": _("Enter an amount above zero.")},
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


class OverdueFilter(admin.SimpleListFilter):
    """Open invoices past their due date (``selectors.invoices_with_overdue``)."""

    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # ``overdue`` is the admin queryset's annotation, not a field of the model.
        if self.value() in ("yes", "no"):
            return queryset.filter(overdue=self.value() == "yes")
        return queryset


def _anomaly_labels(invoice: Invoice) -> str:
    return "; ".join(str(Anomaly(code).label) for code in invoice.anomalies)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return invoices_with_overdue(invoices_visible(request.user)).select_related(
            "client", "site"
        )

    list_display = [
        "label",
        "client",
        "site_reference",
        "month",
        "status",
        "amount",
        "due_date",
        "overdue",
        "review_state",
    ]
    list_display_links = ["label"]
    list_filter = [
        "status",
        OverdueFilter,
        HasAnomaliesFilter,
        "estimated",
        "currency",
        AGENCY_FILTER,
        PeriodFilter,
    ]
    list_select_related = ["client", "site"]
    search_fields = [
        "number",
        "client__number",
        "client__last_name",
        "client__company_name",
        "site__reference",
    ]
    inlines = [InvoiceLineInline]
    actions = [
        "review_invoices",
        "issue_invoices",
        "redraft_invoices",
        "credit_invoices",
        "regenerate_pdfs",
    ]
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
                    "month",
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
        (
            _("Anomaly check"),
            {"fields": ["anomaly_list", "reviewed_by", "reviewed_at", "review_note"]},
        ),
        (_("Amounts"), {"fields": ["tariff", "subtotal_amount", "vat", "amount", "open_amount"]}),
        (
            _("Issue"),
            {"fields": ["issue_date", "due_date", "overdue", "issued_at", "issued_by"]},
        ),
    ]
    readonly_fields = [str(field) for _name, options in fieldsets for field in options["fields"]]

    @admin.display(description=_("invoice"), ordering="number")
    def label(self, invoice: Invoice) -> SafeString:
        return format_html('<span class="text-nowrap">{}</span>', invoice.number or _("Draft"))

    @admin.display(description=_("site"), ordering="site__reference")
    def site_reference(self, invoice: Invoice) -> str:
        return invoice.site.reference

    @admin.display(description=_("period"), ordering="period")
    def month(self, invoice: Invoice) -> str:
        return _month(invoice.period)

    @admin.display(description=_("total"), ordering="total")
    def amount(self, invoice: Invoice) -> str:
        return _money(invoice.total, invoice.currency)

    @admin.display(description=_("total before VAT"))
    def subtotal_amount(self, invoice: Invoice) -> str:
        return _money(invoice.subtotal, invoice.currency)

    @admin.display(description=_("VAT"))
    def vat(self, invoice: Invoice) -> str:
        return _money(invoice.vat_amount, invoice.currency)

    @admin.display(description=_("overdue"), ordering="overdue")
    def overdue(self, invoice: Any) -> SafeString | None:
        if not invoice.overdue:
            return None  # shown as the admin's empty value
        return format_html('<span class="badge text-bg-danger">{}</span>', _("Overdue"))

    @admin.display(description=_("anomalies"))
    def review_state(self, invoice: Invoice) -> SafeString | None:
        if not invoice.anomalies:
            return None  # shown as the admin's empty value
        if invoice.reviewed_at is None and invoice.status == Invoice.Status.DRAFT:
            badge, state = "warning", _("To review")
        else:
            badge, state = "secondary", _("Reviewed")
        return format_html(
            '<span class="badge text-bg-{}">{}</span> {}', badge, state, _anomaly_labels(invoice)
        )

    @admin.display(description=_("anomalies"))
    def anomaly_list(self, invoice: Invoice) -> str | None:
        labels = _anomaly_labels(invoice)
        if labels and invoice.reviewed_at:
            return _("%s (reviewed)") % labels
        return labels or None

    @admin.display(description=_("left to pay"))
    def open_amount(self, invoice: Invoice) -> str | None:
        if invoice.status == Invoice.Status.DRAFT:
            return None
        left = invoices_open_amounts(invoice_ids=[invoice.pk])[invoice.pk]
        return _money(left, invoice.currency)

    @admin.display(description=_("PDF"))
    def pdf_link(self, invoice: Invoice) -> SafeString | None:
        if invoice.status == Invoice.Status.DRAFT:
            return None
        url = reverse("invoice-pdf", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))

    def _confirmation(
        self, request: HttpRequest, queryset: QuerySet[Invoice], form: forms.Form, title: Any
    ) -> TemplateResponse:
        invoices = list(queryset.select_related("client"))
        left = invoices_open_amounts(invoice_ids=[invoice.pk for invoice in invoices])
        return TemplateResponse(
            request,
            "admin/billing/action_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "invoices": [
                    {
                        "invoice": invoice,
                        "total": _money(invoice.total, invoice.currency),
                        "left": _money(left[invoice.pk], invoice.currency)
                        if invoice.status != Invoice.Status.DRAFT
                        else None,
                    }
                    for invoice in invoices
                ],
                "selected_ids": [invoice.pk for invoice in invoices],
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
        form = ReviewForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return self._confirmation(request, queryset, form, _("Accept flagged drafts"))
        actor = acting_user(request)
        done = self._each(
            request,
            queryset,
            lambda invoice: services.invoice_review(
                invoice_id=invoice.pk, actor=actor, note=form.cleaned_data["note"]
            ),
        )
        if done:
            self.message_user(
                request,
                ngettext("%d draft accepted.", "%d drafts accepted.", done) % done,
                messages.SUCCESS,
            )
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
                ngettext(
                    "%(count)d invoice issued: %(first)s.",
                    "%(count)d invoices issued: %(first)s to %(last)s.",
                    report.issued,
                )
                % {"count": report.issued, "first": report.numbers[0], "last": report.numbers[-1]},
                messages.SUCCESS,
            )
        if report.held:
            self.message_user(
                request,
                ngettext(
                    "%d draft needs a review first: it was not issued.",
                    "%d drafts need a review first: they were not issued.",
                    report.held,
                )
                % report.held,
                messages.WARNING,
            )
        if not report.issued and not report.held:
            self.message_user(request, _("Only drafts are issued."), messages.WARNING)

    @admin.action(description=_("Draft again from today's readings"), permissions=["issue"])
    def redraft_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        actor = acting_user(request)
        done = self._each(
            request,
            queryset,
            lambda invoice: services.invoice_redraft(invoice_id=invoice.pk, actor=actor),
        )
        if done:
            self.message_user(
                request,
                ngettext("%d draft drafted again.", "%d drafts drafted again.", done) % done,
                messages.SUCCESS,
            )

    @admin.action(description=_("Issue a credit note"), permissions=["credit"])
    def credit_invoices(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        form = CreditNoteForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return self._confirmation(request, queryset, form, _("Issue credit notes"))
        actor = acting_user(request)
        notes: list[CreditNote] = []
        refusals: list[str] = []
        # All or nothing: a refused invoice sends the person back to the form with nothing
        # written, so confirming again never credits the others twice.
        invoices = list(queryset)
        with transaction.atomic():
            for invoice in invoices:
                try:  # each service call is a savepoint: a refusal undoes only its own
                    notes.append(
                        services.credit_note_issue(
                            invoice_id=invoice.pk,
                            reason=form.cleaned_data["reason"],
                            amount=form.cleaned_data["amount"],
                            actor=actor,
                        )
                    )
                except (ApplicationError, ValidationError, PermissionDenied) as error:
                    refusal = _refusal(error)
                    refusals.append(f"{invoice}: {refusal}" if len(invoices) > 1 else refusal)
            if refusals:
                transaction.set_rollback(True)
        if refusals:
            for refusal in refusals:
                form.add_error(None, refusal)
            return self._confirmation(request, queryset, form, _("Issue credit notes"))
        for note in notes:
            self.message_user(
                request,
                _("Credit note %(number)s: %(total)s.")
                % {"number": note.number, "total": _money(note.total, note.currency)},
                messages.SUCCESS,
            )
        return None

    @admin.action(description=_("Regenerate the PDF"), permissions=["issue"])
    def regenerate_pdfs(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> Any:
        return _regenerate(
            self,
            request,
            queryset,
            lambda pk, actor: delivery.invoice_pdf_regenerate(invoice_id=pk, actor=actor),
        )

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.review_invoice")

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.issue_invoice")

    def has_credit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.add_creditnote")


# --- Credit notes and accounts -------------------------------------------------------------


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "client", "amount", "issue_date", "issued_by"]
    list_filter = ["currency", AGENCY_FILTER]
    list_select_related = ["invoice", "client", "issued_by"]
    search_fields = ["number", "invoice__number", "client__number", "client__last_name"]
    date_hierarchy = "issue_date"
    readonly_fields = [
        "number",
        "invoice",
        "client",
        "agency",
        "reason",
        "subtotal_amount",
        "vat",
        "amount",
        "issue_date",
        "issued_at",
        "issued_by",
        "pdf_link",
    ]
    fields = list(readonly_fields)
    actions = ["regenerate_pdfs"]

    @admin.display(description=_("total"), ordering="total")
    def amount(self, note: CreditNote) -> str:
        return _money(note.total, note.currency)

    @admin.action(description=_("Regenerate the PDF"), permissions=["credit"])
    def regenerate_pdfs(self, request: HttpRequest, queryset: QuerySet[CreditNote]) -> Any:
        return _regenerate(
            self,
            request,
            queryset,
            lambda pk, actor: delivery.credit_note_pdf_regenerate(credit_note_id=pk, actor=actor),
        )

    def has_credit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.add_creditnote")

    @admin.display(description=_("total before VAT"))
    def subtotal_amount(self, note: CreditNote) -> str:
        return _money(note.subtotal, note.currency)

    @admin.display(description=_("VAT"))
    def vat(self, note: CreditNote) -> str:
        return _money(note.vat_amount, note.currency)

    @admin.display(description=_("PDF"))
    def pdf_link(self, note: CreditNote) -> SafeString:
        url = reverse("credit-note-pdf", args=[note.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))


@admin.register(AccountEntry)
class AccountEntryAdmin(ReadOnlyAdmin):
    list_display = ["booked_at", "client", "kind", "reference", "amount_owed"]
    list_filter = ["kind", "currency"]
    list_select_related = ["client"]
    search_fields = ["reference", "client__number", "client__last_name", "client__company_name"]
    date_hierarchy = "booked_at"

    @admin.display(description=_("amount"), ordering="amount")
    def amount_owed(self, entry: AccountEntry) -> str:
        return _money(entry.amount, entry.currency)
