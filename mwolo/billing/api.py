"""Billing over the API: invoices and their PDFs, credit notes, runs, statements, tariffs.

Reads go through ``visible_to``; every change is a service call (``billing.services``).
"""

import datetime as dt
from typing import Any, cast

from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from mwolo.accounts.models import User
from mwolo.core.api import AuditActorMixin, RoleModelPermissions, ScopedQuerysetMixin
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import visible_to
from mwolo.crm.models import Client

from . import delivery, selectors, services
from .models import BillingRun, CreditNote, Currency, Invoice, InvoiceLine, Tariff, TariffBand


class HasPermission(permissions.BasePermission):
    """The user holds ``view.required_permission`` (for actions beyond the model's CRUD)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(
            request.user.is_authenticated and request.user.has_perm(view.required_permission)
        )


def _user(request: Request) -> User:
    return cast(User, request.user)


class CreditNoteSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "number",
            "invoice",
            "invoice_number",
            "client",
            "currency",
            "reason",
            "subtotal",
            "vat_amount",
            "total",
            "issue_date",
        ]
        read_only_fields = fields


# --- Invoices ------------------------------------------------------------------------------


class InvoiceLineSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "kind",
            "kind_label",
            "band_from_kwh",
            "band_to_kwh",
            "quantity",
            "unit_price",
            "amount",
            "vat_rate",
        ]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    client_number = serializers.CharField(source="client.number", read_only=True)
    client_name = serializers.CharField(source="client.display_name", read_only=True)
    site_reference = serializers.CharField(source="site.reference", read_only=True)
    meter_serial = serializers.CharField(source="meter.serial", read_only=True, default=None)
    overdue = serializers.BooleanField(
        read_only=True,
        help_text=_("Issued or partially paid, and due before today in the agency's time zone."),
    )

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "status_label",
            "period",
            "client",
            "client_number",
            "client_name",
            "site",
            "site_reference",
            "agency",
            "currency",
            "meter_serial",
            "previous_reading_kwh",
            "previous_reading_at",
            "current_reading_kwh",
            "current_reading_at",
            "consumption_kwh",
            "estimated",
            "estimates_deducted_kwh",
            "anomalies",
            "reviewed_at",
            "review_note",
            "subtotal",
            "vat_amount",
            "total",
            "issue_date",
            "due_date",
            "overdue",
            "lines",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.BOOL)
class _TrueOrFalseFilter(filters.TypedChoiceFilter):
    """``true`` or ``false``; anything else is a 400, not a filter silently ignored."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(**kwargs)


class InvoiceFilter(filters.FilterSet):
    client = filters.NumberFilter(field_name="client_id")
    site = filters.NumberFilter(field_name="site_id")
    # On the queryset's annotation (``selectors.invoices_with_overdue``).
    overdue = _TrueOrFalseFilter(field_name="overdue", label=_("overdue"))

    class Meta:
        model = Invoice
        fields = ["client", "site", "agency", "status", "period", "currency", "estimated"]


class PdfQuerySerializer(serializers.Serializer):
    regenerate = serializers.BooleanField(required=False, default=False)


_REGENERATE = OpenApiParameter(
    "regenerate",
    OpenApiTypes.BOOL,
    description=_(
        "Draw the PDF again from the records and store it in place of the old one (staff "
        "who issue these documents only; the amounts are those of the issue)."
    ),
)


def _pdf_query(request: Request) -> bool:
    """Whether the PDF is to be drawn again (``?regenerate=true``); a bad value is a 400."""
    query = PdfQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return bool(query.validated_data["regenerate"])


class ReviewSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=300, help_text=_("What you checked."))


class CreditSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)
    amount = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        required=False,
        allow_null=True,
        help_text=_("VAT included; empty: everything not yet credited (cancels the invoice)."),
    )


_ACTION_RESPONSES = {
    400: OpenApiResponse(description=_("Field errors, or the invoice cannot take this step.")),
    403: OpenApiResponse(description=_("The user may not do this.")),
    404: OpenApiResponse(description=_("No such invoice among those the user may see.")),
}


@extend_schema_view(
    list=extend_schema(summary=_("Invoices of the user's agencies, or the client's own")),
    retrieve=extend_schema(summary=_("One invoice with its lines")),
)
class InvoiceViewSet(
    AuditActorMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Staff see their agencies' invoices and take them through review, issue and credit;
    a client reads their own issued invoices and downloads the PDFs."""

    queryset = Invoice.objects.all()
    serializer_class = InvoiceSerializer
    lookup_value_converter = "int"
    filterset_class = InvoiceFilter
    search_fields = ["number", "client__number", "client__last_name", "client__company_name"]
    ordering_fields = ["period", "number", "due_date", "total"]

    def get_queryset(self) -> Any:
        return (
            selectors.invoices_with_overdue(selectors.invoices_visible(self.request.user))
            .select_related("client", "site", "meter")
            .prefetch_related("lines")
        )

    def _read(self, invoice_id: int) -> Response:
        """The invoice as the list shows it (with ``overdue``), after a step changed it."""
        return Response(InvoiceSerializer(self.get_queryset().get(pk=invoice_id)).data)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {"review": ReviewSerializer, "credit": CreditSerializer}.get(
            self.action or "", InvoiceSerializer
        )

    def get_permissions(self) -> list[permissions.BasePermission]:
        required = {
            "review": "billing.review_invoice",
            "issue": "billing.issue_invoice",
            "credit": "billing.add_creditnote",
        }.get(self.action or "")
        if required:
            self.required_permission = required
            return [HasPermission()]
        return [RoleModelPermissions()]

    @extend_schema(
        summary=_("The invoice as a PDF (rendered now if it was not yet)"),
        parameters=[_REGENERATE],
        responses={200: OpenApiResponse(description=_("application/pdf")), 403: None, 404: None},
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request: Request, pk: int) -> FileResponse:
        invoice = self.get_object()
        if invoice.status == Invoice.Status.DRAFT:
            raise ApplicationError(str(_("A draft has no PDF: issue it first.")), status=404)
        if _pdf_query(request):
            stored = delivery.invoice_pdf_regenerate(invoice_id=invoice.pk, actor=_user(request))
        else:
            stored = delivery.invoice_pdf(invoice_id=invoice.pk)
        return FileResponse(
            stored.open("rb"), content_type="application/pdf", filename=f"{invoice.number}.pdf"
        )

    @extend_schema(
        summary=_("Accept a flagged draft as it is"),
        request=ReviewSerializer,
        responses={200: InvoiceSerializer, **_ACTION_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: int) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = services.invoice_review(
            invoice_id=pk, actor=_user(request), note=serializer.validated_data["note"]
        )
        return self._read(invoice.pk)

    @extend_schema(
        summary=_("Issue a draft: it gets its number and due date"),
        request=None,
        responses={200: InvoiceSerializer, **_ACTION_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def issue(self, request: Request, pk: int) -> Response:
        invoice = services.invoice_issue(invoice_id=pk, actor=_user(request))
        return self._read(invoice.pk)

    @extend_schema(
        summary=_("Issue a credit note on the invoice"),
        request=CreditSerializer,
        responses={201: CreditNoteSerializer, **_ACTION_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def credit(self, request: Request, pk: int) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = services.credit_note_issue(
            invoice_id=pk,
            actor=_user(request),
            reason=serializer.validated_data["reason"],
            amount=serializer.validated_data.get("amount"),
        )
        return Response(CreditNoteSerializer(note).data, status=status.HTTP_201_CREATED)


# --- Credit notes --------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary=_("Credit notes of the user's agencies, or the client's own")),
    retrieve=extend_schema(summary=_("One credit note")),
)
class CreditNoteViewSet(
    ScopedQuerysetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = CreditNote.objects.all()
    serializer_class = CreditNoteSerializer
    lookup_value_converter = "int"
    filterset_fields = ["client", "invoice", "currency"]
    search_fields = ["number", "invoice__number"]

    def scoped_queryset(self) -> Any:
        return CreditNote.objects.select_related("invoice")

    @extend_schema(
        summary=_("The credit note as a PDF"),
        parameters=[_REGENERATE],
        responses={200: OpenApiResponse(description=_("application/pdf")), 403: None, 404: None},
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request: Request, pk: int) -> FileResponse:
        note = self.get_object()
        if _pdf_query(request):
            stored = delivery.credit_note_pdf_regenerate(
                credit_note_id=note.pk, actor=_user(request)
            )
        else:
            stored = delivery.credit_note_pdf(credit_note_id=note.pk)
        return FileResponse(
            stored.open("rb"), content_type="application/pdf", filename=f"{note.number}.pdf"
        )


# --- Billing runs --------------------------------------------------------------------------


class BillingRunSerializer(serializers.ModelSerializer):
    period = serializers.DateField(
        help_text=_("The first day of the month billed, e.g. 2026-10-01.")
    )

    class Meta:
        model = BillingRun
        fields = [
            "id",
            "period",
            "agency",
            "status",
            "issue_when_drafted",
            "chunks",
            "chunks_drafted",
            "drafted_at",
            "issued_at",
            "created_at",
        ]
        read_only_fields = [
            "status",
            "chunks",
            "chunks_drafted",
            "drafted_at",
            "issued_at",
            "created_at",
        ]

    def validate_agency(self, agency: Any) -> Any:
        if (
            agency is not None
            and not visible_to(
                type(agency).objects.filter(pk=agency.pk), self.context["request"].user
            ).exists()
        ):
            raise serializers.ValidationError(_("You cannot bill for this agency."))
        return agency

    def create(self, validated_data: dict[str, Any]) -> BillingRun:
        agency = validated_data.get("agency")
        return services.billing_run_launch(
            period=validated_data["period"],
            agency_id=agency.pk if agency else None,
            actor=_user(self.context["request"]),
            issue=validated_data.get("issue_when_drafted", False),
        )


@extend_schema_view(
    list=extend_schema(summary=_("Billing runs of the user's agencies")),
    retrieve=extend_schema(summary=_("One billing run")),
    create=extend_schema(summary=_("Bill a month: drafts every postpaid site's invoice")),
)
class BillingRunViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = BillingRun.objects.all()
    serializer_class = BillingRunSerializer
    lookup_value_converter = "int"
    filterset_fields = ["period", "agency", "status"]

    def scoped_queryset(self) -> Any:
        return BillingRun.objects.select_related("agency")

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action == "issue":
            self.required_permission = "billing.issue_invoice"
            return [HasPermission()]
        return [RoleModelPermissions()]

    @extend_schema(
        summary=_("Issue the run's ready drafts"),
        request=None,
        responses={202: BillingRunSerializer, **_ACTION_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def issue(self, request: Request, pk: int) -> Response:
        run = self.get_object()
        services.billing_run_issue(run_id=run.pk, actor=_user(request))
        run.refresh_from_db()
        return Response(BillingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


# --- Statements ----------------------------------------------------------------------------


class StatementQuerySerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=Currency.choices)
    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError(
                {"end": _("The end of the statement comes before its start.")}
            )
        if attrs["end"] - attrs["start"] > dt.timedelta(days=3 * 366):
            raise serializers.ValidationError({"end": _("A statement covers three years at most.")})
        return attrs


class StatementLineSerializer(serializers.Serializer):
    booked_at = serializers.DateTimeField()
    kind = serializers.CharField()
    reference = serializers.CharField()
    debit = serializers.DecimalField(max_digits=16, decimal_places=2)
    credit = serializers.DecimalField(max_digits=16, decimal_places=2)
    balance = serializers.DecimalField(max_digits=16, decimal_places=2)


class StatementSerializer(serializers.Serializer):
    client = serializers.IntegerField(source="client.pk")
    currency = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    opening = serializers.DecimalField(max_digits=16, decimal_places=2)
    closing = serializers.DecimalField(max_digits=16, decimal_places=2)
    lines = StatementLineSerializer(many=True)


_STATEMENT_PARAMETERS = [
    OpenApiParameter("currency", OpenApiTypes.STR, enum=["CDF", "USD"], required=True),
    OpenApiParameter("start", OpenApiTypes.DATE, required=True),
    OpenApiParameter("end", OpenApiTypes.DATE, required=True),
]


class StatementViewSet(viewsets.ViewSet):
    """A client's statement of account: staff for their agencies' clients, a client their own."""

    lookup_value_converter = "int"
    permission_classes = [permissions.IsAuthenticated]

    def _client_and_query(self, request: Request, pk: int) -> tuple[Client, dict[str, Any]]:
        if not request.user.has_perm("billing.view_accountentry"):
            raise PermissionDenied
        client = get_object_or_404(
            visible_to(Client.objects.select_related("agency__province"), request.user), pk=pk
        )
        query = StatementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return client, query.validated_data

    @extend_schema(
        summary=_("A client's statement of account"),
        parameters=_STATEMENT_PARAMETERS,
        responses={200: StatementSerializer},
    )
    def retrieve(self, request: Request, pk: int) -> Response:
        client, query = self._client_and_query(request, pk)
        statement = selectors.client_statement(client=client, **query)
        return Response(StatementSerializer(statement).data)

    @extend_schema(
        summary=_("A client's statement of account as a PDF"),
        parameters=_STATEMENT_PARAMETERS,
        responses={200: OpenApiResponse(description=_("application/pdf"))},
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request: Request, pk: int) -> FileResponse:
        client, query = self._client_and_query(request, pk)
        statement = selectors.client_statement(client=client, **query)
        content = delivery.statement_pdf(statement=statement)
        name = f"releve-{client.number}-{query['start']}-{query['end']}.pdf"
        return FileResponse(content, content_type="application/pdf", filename=name)


# --- Tariffs (public) ----------------------------------------------------------------------


class TariffBandSerializer(serializers.ModelSerializer):
    class Meta:
        model = TariffBand
        fields = ["up_to_kwh", "price_per_kwh"]


class TariffSerializer(serializers.ModelSerializer):
    bands = TariffBandSerializer(many=True, read_only=True)
    category_label = serializers.CharField(source="get_category_display", read_only=True)

    class Meta:
        model = Tariff
        fields = [
            "code",
            "name",
            "category",
            "category_label",
            "currency",
            "fixed_monthly_charge",
            "vat_rate",
            "social_ceiling_kwh",
            "social_price_per_kwh",
            "payment_terms_days",
            "valid_from",
            "valid_to",
            "bands",
        ]


@extend_schema_view(list=extend_schema(summary=_("Tariffs in force today and to come (public)")))
class TariffViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TariffSerializer
    permission_classes = [permissions.AllowAny]
    pagination_class = None
    filterset_fields = ["category", "currency"]

    def get_queryset(self) -> Any:
        return selectors.tariffs_published()
