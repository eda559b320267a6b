from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath
from mwolo.core.storage import private_storage
from mwolo.crm.models import SiteCategory


class Currency(models.TextChoices):
    CDF = "CDF", _("Congolese franc (CDF)")
    USD = "USD", _("US dollar (USD)")


class MoneyField(models.DecimalField):
    """An amount to the cent (Decimal, never float)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class Tariff(TimeStampedModel):
    """The price of electricity for one category of sites over a span of dates.

    Energy is priced by blocks of the month's consumption (``TariffBand``); VAT is added
    on top. One tariff per category is in force on any day.
    """

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    category = models.CharField(_("site category"), max_length=12, choices=SiteCategory.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    fixed_monthly_charge = MoneyField(
        _("fixed monthly charge"),
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Billed on postpaid invoices; prepaid purchases pay energy only."),
    )
    vat_rate = models.DecimalField(
        _("VAT rate"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.16"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text=_("0.16 for 16%."),
    )
    social_ceiling_kwh = models.DecimalField(
        _("social tranche: up to (kWh in the month)"),
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001"))],
        help_text=_(
            "A month at or below this consumption is billed entirely at the social price. "
            "Empty: no social tranche."
        ),
    )
    social_price_per_kwh = models.DecimalField(
        _("social price per kWh (before VAT)"),
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        _("payment terms (days)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("An invoice is due this many days after it is issued."),
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(
        _("valid to"), null=True, blank=True, help_text=_("Last day; empty: until replaced.")
    )

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        ordering = ["category", "-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="billing_tariff_dates_in_order",
            ),
            models.CheckConstraint(
                condition=Q(social_ceiling_kwh__isnull=True, social_price_per_kwh__isnull=True)
                | Q(social_ceiling_kwh__isnull=False, social_price_per_kwh__isnull=False),
                name="billing_tariff_social_tranche_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"

    def clean(self) -> None:
        super().clean()
        if (self.social_ceiling_kwh is None) != (self.social_price_per_kwh is None):
            raise ValidationError(
                {
                    "social_price_per_kwh": _(
                        "A social tranche needs both its ceiling and its price."
                    )
                }
            )


class TariffBand(models.Model):
    """A block of the month's consumption and its price per kWh (before VAT)."""

    tariff = models.ForeignKey(
        Tariff, on_delete=models.CASCADE, related_name="bands", verbose_name=_("tariff")
    )
    up_to_kwh = models.DecimalField(
        _("up to (kWh in the month)"),
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001"))],
        help_text=_("Empty for the last band: everything above."),
    )
    price_per_kwh = models.DecimalField(
        _("price per kWh (before VAT)"),
        max_digits=12,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )

    class Meta:
        verbose_name = _("consumption band")
        verbose_name_plural = _("consumption bands")
        ordering = [F("up_to_kwh").asc(nulls_last=True)]

    def __str__(self) -> str:
        return f"≤ {self.up_to_kwh} kWh" if self.up_to_kwh is not None else "> …"


class ExchangeRate(models.Model):
    """The Banque Centrale du Congo's rate of a day: CDF for one USD."""

    day = models.DateField(_("day"), unique=True)
    cdf_per_usd = models.DecimalField(
        _("CDF for 1 USD"),
        max_digits=12,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: 1 USD = {self.cdf_per_usd} CDF"


class BillingRun(TimeStampedModel):
    """Billing one month for every agency, or for one: drafts first, then issue.

    Re-running a run is safe: it refreshes the drafts it made and never makes a second
    invoice for a site and month (see ``services.billing_run_draft``).
    """

    access = AccessPath(agency="agency")

    class Status(models.TextChoices):
        DRAFTING = "drafting", _("Drafting")
        DRAFTED = "drafted", _("Drafted: to review")
        ISSUING = "issuing", _("Issuing")
        ISSUED = "issued", _("Issued")

    period = models.DateField(_("period"), help_text=_("The first day of the month billed."))
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="billing_runs",
        verbose_name=_("agency"),
        help_text=_("Empty: every agency."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFTING
    )
    # Ranges of site ids, fixed when the run starts: each is one chunk, drafted by one task.
    chunks = models.JSONField(_("chunks"), default=list, editable=False)
    chunks_drafted = models.JSONField(_("chunks drafted"), default=list, editable=False)
    issue_when_drafted = models.BooleanField(_("issue when drafted"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    drafted_at = models.DateTimeField(_("drafted at"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)

    class Meta:
        verbose_name = _("billing run")
        verbose_name_plural = _("billing runs")
        ordering = ["-period", "agency__code"]
        constraints = [
            models.UniqueConstraint(fields=["period", "agency"], name="billing_run_unique"),
            models.UniqueConstraint(
                fields=["period"],
                condition=Q(agency__isnull=True),
                name="billing_run_unique_all_agencies",
            ),
        ]

    def __str__(self) -> str:
        where = self.agency.code if self.agency_id and self.agency else _("all agencies")
        return f"{self.period:%Y-%m} – {where}"


class Anomaly(models.TextChoices):
    """Why a draft needs a person before it may be issued."""

    ESTIMATED = "estimated", _("No reading in the period: consumption estimated")
    NO_HISTORY = "no_history", _("No reading and no history to estimate from")
    SUSPICIOUS = "suspicious", _("Flagged readings not yet reviewed")
    OVER_ESTIMATED = "over_estimated", _("Earlier estimates exceed the measured consumption")
    NO_TARIFF = "no_tariff", _("No tariff in force for the site's category")


class Invoice(TimeStampedModel):
    """A month of electricity for one site: a draft until issued with its number.

    What is owed is never edited here: the client's balance is the sum of their account
    entries (``AccountEntry``), which issuing, crediting and paying write.
    """

    access = AccessPath(agency="agency", client="client")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ISSUED = "issued", _("Issued")
        PARTIALLY_PAID = "partially_paid", _("Partially paid")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled by a credit note")

    OPEN = (Status.ISSUED, Status.PARTIALLY_PAID)

    number = models.CharField(_("number"), max_length=20, blank=True, editable=False)
    status = models.CharField(
        _("status"),
        max_length=14,
        choices=Status.choices,
        default=Status.DRAFT,
        editable=False,
    )
    run = models.ForeignKey(
        BillingRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("billing run"),
        editable=False,
    )
    client = models.ForeignKey(
        "crm.Client",
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("client"),
        editable=False,
    )
    site = models.ForeignKey(
        "crm.Site",
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("site"),
        editable=False,
    )
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        related_name="invoices",
        verbose_name=_("agency"),
        editable=False,
    )
    period = models.DateField(_("period"), editable=False)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    tariff = models.ForeignKey(
        Tariff,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("tariff"),
        editable=False,
        db_index=False,
    )
    # The meter at the end of the period and the readings the consumption rests on.
    meter = models.ForeignKey(
        "metering.Meter",
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("meter"),
        editable=False,
        db_index=False,
    )
    previous_reading_kwh = models.DecimalField(
        _("previous register"), max_digits=14, decimal_places=3, null=True, editable=False
    )
    previous_reading_at = models.DateTimeField(_("previous reading"), null=True, editable=False)
    current_reading_kwh = models.DecimalField(
        _("current register"), max_digits=14, decimal_places=3, null=True, editable=False
    )
    current_reading_at = models.DateTimeField(_("current reading"), null=True, editable=False)
    consumption_kwh = models.DecimalField(
        _("consumption billed (kWh)"), max_digits=14, decimal_places=3, editable=False
    )
    estimated = models.BooleanField(_("estimated"), default=False, editable=False)
    estimates_deducted_kwh = models.DecimalField(
        _("earlier estimates deducted (kWh)"),
        max_digits=14,
        decimal_places=3,
        default=Decimal(0),
        editable=False,
    )
    anomalies = models.JSONField(_("anomalies"), default=list, editable=False)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
        editable=False,
        db_index=False,
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True, editable=False)
    review_note = models.CharField(_("review note"), max_length=300, blank=True, editable=False)
    subtotal = MoneyField(_("total before VAT"), editable=False)
    vat_amount = MoneyField(_("VAT"), editable=False)
    total = MoneyField(_("total"), editable=False)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("issued by"),
        editable=False,
        db_index=False,
    )
    issue_date = models.DateField(_("issue date"), null=True, blank=True, editable=False)
    due_date = models.DateField(_("due date"), null=True, blank=True, editable=False)
    pdf = models.FileField(
        _("PDF"), upload_to="invoices/%Y/%m/", storage=private_storage, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-period", "-number"]
        constraints = [
            # Never two invoices for a site and month, but a cancelled one may be replaced.
            models.UniqueConstraint(
                fields=["site", "period"],
                condition=~Q(status="cancelled"),
                name="billing_one_invoice_per_site_and_period",
            ),
            models.UniqueConstraint(
                fields=["number"], condition=~Q(number=""), name="billing_invoice_number_unique"
            ),
            # Issuing gives the number first, then the status, in one transaction.
            models.CheckConstraint(
                condition=Q(status="draft") | ~Q(number=""),
                name="billing_invoice_numbered_once_issued",
            ),
        ]
        indexes = [
            models.Index(fields=["period", "status"], name="billing_invoice_period"),
            models.Index(fields=["due_date"], name="billing_invoice_due"),
        ]
        permissions = [
            ("issue_invoice", _("Can issue invoices")),
            ("review_invoice", _("Can accept flagged draft invoices")),
        ]

    def __str__(self) -> str:
        return self.number or f"{_('Draft')} {self.site_id} {self.period:%Y-%m}"

    @property
    def blocking_anomalies(self) -> list[str]:
        """Anomalies that keep this draft from being issued until a person reviews it."""
        return [] if self.reviewed_at else list(self.anomalies)


class InvoiceLine(models.Model):
    """One priced line: the fixed charge, a consumption band, the social tranche."""

    class Kind(models.TextChoices):
        FIXED = "fixed", _("Fixed monthly charge")
        ENERGY = "energy", _("Energy")
        SOCIAL = "social", _("Energy, social tranche")
        ADJUSTMENT = "adjustment", _("Adjustment")

    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=_("invoice"),
        db_index=False,  # the unique (invoice, position) index serves
    )
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    tariff = models.ForeignKey(
        Tariff, on_delete=models.PROTECT, related_name="+", verbose_name=_("tariff")
    )
    band_from_kwh = models.DecimalField(
        _("from (kWh)"), max_digits=12, decimal_places=3, null=True, blank=True
    )
    band_to_kwh = models.DecimalField(
        _("to (kWh)"), max_digits=12, decimal_places=3, null=True, blank=True
    )
    quantity = models.DecimalField(
        _("quantity"),
        max_digits=14,
        decimal_places=4,
        help_text=_("kWh, or the share of the month for the fixed charge."),
    )
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=4)
    amount = MoneyField(_("amount before VAT"))
    vat_rate = models.DecimalField(_("VAT rate"), max_digits=5, decimal_places=4)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="billing_invoice_line_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"


class CreditNote(TimeStampedModel):
    """Money taken back on an issued invoice, with its own gap-free number.

    A credit note for the invoice's whole open amount cancels the invoice.
    """

    access = AccessPath(agency="agency", client="client")

    number = models.CharField(_("number"), max_length=20, unique=True, editable=False)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="credit_notes", verbose_name=_("invoice")
    )
    client = models.ForeignKey(
        "crm.Client", on_delete=models.PROTECT, related_name="+", verbose_name=_("client")
    )
    agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, related_name="+", verbose_name=_("agency")
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    reason = models.CharField(_("reason"), max_length=300)
    subtotal = MoneyField(_("total before VAT"))
    vat_amount = MoneyField(_("VAT"))
    total = MoneyField(_("total"))
    issued_at = models.DateTimeField(_("issued at"))
    issue_date = models.DateField(_("issue date"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("issued by"),
    )
    pdf = models.FileField(
        _("PDF"), upload_to="credit-notes/%Y/%m/", storage=private_storage, blank=True
    )

    class Meta:
        verbose_name = _("credit note")
        verbose_name_plural = _("credit notes")
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.number


class AccountEntry(models.Model):
    """One movement on a client's account, in one currency: written once, never edited.

    ``amount`` is what the client owes more (an invoice) or less (a credit note, a
    payment): the balance is the sum of the entries.
    """

    access = AccessPath(agency="client__agency", client="client")

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")
        PAYMENT = "payment", _("Payment")
        REVERSAL = "reversal", _("Payment reversed")
        REFUND = "refund", _("Refund")

    client = models.ForeignKey(
        "crm.Client",
        on_delete=models.PROTECT,
        related_name="account_entries",
        db_index=False,  # the (client, currency, booked_at) index serves
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    reference = models.CharField(_("reference"), max_length=30)
    booked_at = models.DateTimeField(_("booked at"))
    amount = MoneyField(_("amount"))
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    credit_note = models.OneToOneField(
        CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="entry"
    )
    # A payment's entries: one per invoice it pays, one for what is left as credit; more
    # when that credit later pays an invoice (a pair moving it) or the payment is reversed.
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
    )
    refund = models.ForeignKey(
        "payments.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )

    class Meta:
        verbose_name = _("account entry")
        verbose_name_plural = _("account entries")
        ordering = ["client", "booked_at", "pk"]
        indexes = [models.Index(fields=["client", "currency", "booked_at"])]
        constraints = [
            # An invoice is booked once; its credit notes and payments have their own rows.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="invoice"),
                name="billing_entry_one_per_invoice",
            )
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency}"
