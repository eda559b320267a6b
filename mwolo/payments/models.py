"""Money coming in: mobile-money requests, payments of every kind, tills, refunds.

A payment never edits what a client owes: recording it writes account entries
(``billing.AccountEntry``), one per invoice it pays and one for what is left as credit.
Which invoices a payment paid is read from those entries (``selectors``).
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mwolo.billing.models import Currency, MoneyField
from mwolo.core.models import TimeStampedModel
from mwolo.core.permissions import AccessPath
from mwolo.core.phones import DrcMobileField
from mwolo.core.storage import private_storage
from mwolo.integrations.payments.base import PaymentStatus


class Method(models.TextChoices):
    CASH = "cash", _("Cash")
    BANK = "bank", _("Bank transfer")
    MPESA = "mpesa", _("M-Pesa")
    VODACOM = "vodacom", _("Vodacom M-Pesa")
    AIRTEL = "airtel", _("Airtel Money")
    ORANGE = "orange", _("Orange Money")


MOBILE_METHODS = (Method.MPESA, Method.VODACOM, Method.AIRTEL, Method.ORANGE)


def intent_reference() -> str:
    """``PI`` and ten capitals or digits: what every operator accepts as a reference."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # nothing to misread on a phone
    return "PI" + "".join(secrets.choice(alphabet) for _ in range(10))


class PaymentIntent(TimeStampedModel):
    """A client asked to pay by mobile money: the push to their phone and what came of it."""

    access = AccessPath(agency="client__agency", client="client")

    class Purpose(models.TextChoices):
        INVOICE = "invoice", _("An invoice")
        ACCOUNT = "account", _("The account balance")
        PREPAID = "prepaid", _("Prepaid credit")

    reference = models.CharField(
        _("reference"), max_length=20, unique=True, default=intent_reference, editable=False
    )
    client = models.ForeignKey(
        "crm.Client", on_delete=models.PROTECT, related_name="payment_intents"
    )
    purpose = models.CharField(_("purpose"), max_length=10, choices=Purpose.choices)
    invoice = models.ForeignKey(
        "billing.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment_intents",
        verbose_name=_("invoice"),
    )
    meter = models.ForeignKey(
        "metering.Meter",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment_intents",
        verbose_name=_("prepaid meter"),
    )
    provider = models.CharField(
        _("operator"), max_length=10, choices=[(m.value, m.label) for m in MOBILE_METHODS]
    )
    msisdn = DrcMobileField(_("payer's number"))
    amount = MoneyField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=PaymentStatus.choices,
        default=PaymentStatus.PENDING,
        db_index=True,
    )
    message = models.CharField(_("operator's message"), max_length=300, blank=True)
    # What the operator calls it (callbacks and status queries), and what it must be asked
    # with (Orange's pay_token and notif_token, the payment page's address...).
    provider_reference = models.CharField(
        _("operator's reference"), max_length=100, blank=True, db_index=True
    )
    provider_extra = models.JSONField(_("operator's details"), default=dict, editable=False)
    pushed_at = models.DateTimeField(_("pushed at"), null=True, blank=True)
    push_error = models.CharField(_("push error"), max_length=300, blank=True)
    checked_at = models.DateTimeField(_("last status query"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )

    class Meta:
        verbose_name = _("mobile money request")
        verbose_name_plural = _("mobile money requests")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference

    @property
    def payment_url(self) -> str:
        """Where the client's browser goes to pay (Orange), if anywhere."""
        return str(self.provider_extra.get("payment_url", ""))


class CashSession(models.Model):
    """A cashier's till at an agency, from opening to the count at closing."""

    access = AccessPath(agency="agency")

    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="cash_sessions",
        verbose_name=_("cashier"),
    )
    agency = models.ForeignKey(
        "agencies.Agency",
        on_delete=models.PROTECT,
        related_name="cash_sessions",
        verbose_name=_("agency"),
    )
    opened_at = models.DateTimeField(_("opened at"))
    opening_cdf = MoneyField(_("float in CDF"))
    opening_usd = MoneyField(_("float in USD"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    counted_cdf = MoneyField(_("counted CDF"), null=True, blank=True)
    counted_usd = MoneyField(_("counted USD"), null=True, blank=True)
    expected_cdf = MoneyField(_("expected CDF"), null=True, blank=True)
    expected_usd = MoneyField(_("expected USD"), null=True, blank=True)
    closing_note = models.CharField(_("note at closing"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("till")
        verbose_name_plural = _("tills")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cashier"],
                condition=Q(closed_at__isnull=True),
                name="payments_one_open_till_per_cashier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.cashier} {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def variance_cdf(self) -> object:
        if self.counted_cdf is None or self.expected_cdf is None:
            return None
        return self.counted_cdf - self.expected_cdf

    @property
    def variance_usd(self) -> object:
        if self.counted_usd is None or self.expected_usd is None:
            return None
        return self.counted_usd - self.expected_usd


class Payment(TimeStampedModel):
    """Money received from a client, with its receipt number (gap-free per year).

    ``amount`` and ``currency`` are what was handed over; ``credited`` is what of it went
    on the client's account, in ``account_currency`` (converted at the day's rate): all of
    it, except what bought prepaid credit (``token``).
    """

    access = AccessPath(agency="client__agency", client="client")

    class Status(models.TextChoices):
        RECORDED = "recorded", _("Recorded")
        REVERSED = "reversed", _("Reversed")

    receipt_number = models.CharField(_("receipt number"), max_length=20, unique=True)
    client = models.ForeignKey(
        "crm.Client", on_delete=models.PROTECT, related_name="payments", verbose_name=_("client")
    )
    method = models.CharField(_("method"), max_length=10, choices=Method.choices)
    amount = MoneyField(_("amount received"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    credited = MoneyField(_("credited to the account"))
    account_currency = models.CharField(
        _("account currency"), max_length=3, choices=Currency.choices
    )
    exchange_rate = models.DecimalField(
        _("CDF for 1 USD used"), max_digits=12, decimal_places=4, null=True, blank=True
    )
    operator_transaction_id = models.CharField(
        _("operator's transaction"), max_length=100, blank=True
    )
    payer = models.CharField(_("payer"), max_length=40, blank=True)
    intent = models.OneToOneField(
        PaymentIntent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment",
        verbose_name=_("mobile money request"),
    )
    cash_session = models.ForeignKey(
        CashSession,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        verbose_name=_("till"),
    )
    token = models.OneToOneField(
        "metering.PrepaidToken",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payment",
        verbose_name=_("prepaid token bought"),
    )
    received_at = models.DateTimeField(_("received at"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RECORDED
    )
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reversed by"),
    )
    reversal_reason = models.CharField(_("reason for the reversal"), max_length=300, blank=True)
    pdf = models.FileField(
        _("receipt (PDF)"), upload_to="receipts/%Y/%m/", storage=private_storage, blank=True
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-received_at"]
        constraints = [
            # An operator's transaction (a bank's reference) pays once, however often told.
            models.UniqueConstraint(
                fields=["method", "operator_transaction_id"],
                condition=~Q(operator_transaction_id=""),
                name="payments_operator_transaction_once",
            )
        ]
        permissions = [("reverse_payment", _("Can reverse a payment"))]

    def __str__(self) -> str:
        return self.receipt_number


class Refund(TimeStampedModel):
    """Credit given back to a client (cash at the till, a transfer), with the reason."""

    access = AccessPath(agency="client__agency", client="client")

    client = models.ForeignKey(
        "crm.Client", on_delete=models.PROTECT, related_name="refunds", verbose_name=_("client")
    )
    method = models.CharField(_("method"), max_length=10, choices=Method.choices)
    amount = MoneyField(_("amount"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    reason = models.CharField(_("reason"), max_length=300)
    cash_session = models.ForeignKey(
        CashSession,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("till"),
    )
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("refunded by"),
    )

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"RMB-{self.pk} · {self.amount} {self.currency}"


class WebhookCall(models.Model):
    """Every call to a payment webhook, exactly as it came, and what we did with it."""

    class Outcome(models.TextChoices):
        QUEUED = "queued", _("Being confirmed with the operator")
        SETTLED = "settled", _("Payment recorded")
        DUPLICATE = "duplicate", _("Already recorded")
        FAILED = "failed", _("Payment failed")
        PENDING = "pending", _("Still pending at the operator")
        REVIEW = "review", _("Sent for review")
        REJECTED = "rejected", _("Refused")
        UNKNOWN = "unknown", _("No such request")

    provider = models.CharField(_("operator"), max_length=10)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    path = models.CharField(_("path"), max_length=300)
    remote_address = models.GenericIPAddressField(_("from"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    intent = models.ForeignKey(
        PaymentIntent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="webhook_calls",
        verbose_name=_("mobile money request"),
    )

    class Meta:
        verbose_name = _("webhook call")
        verbose_name_plural = _("webhook calls")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.provider} {self.received_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class PaymentReview(models.Model):
    """Money the operator says it took that does not match the request: a person decides."""

    access = AccessPath(agency="intent__client__agency", client=None)

    intent = models.ForeignKey(
        PaymentIntent, on_delete=models.PROTECT, related_name="reviews", verbose_name=_("request")
    )
    reason = models.CharField(_("reason"), max_length=300)
    operator_transaction_id = models.CharField(
        _("operator's transaction"), max_length=100, blank=True
    )
    amount = MoneyField(_("amount the operator reports"), null=True, blank=True)
    currency = models.CharField(_("currency the operator reports"), max_length=3, blank=True)
    payer = models.CharField(_("payer the operator reports"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution = models.CharField(_("resolution"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("payment to review")
        verbose_name_plural = _("payments to review")
        ordering = ["resolved_at", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["intent", "operator_transaction_id"], name="payments_review_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.intent} – {self.reason}"
