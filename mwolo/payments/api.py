"""Payments over the API: mobile-money requests, cash at the till, bank transfers,
receipts, reversals, refunds. Reads go through ``visible_to``; every change is a service
call."""

from decimal import Decimal
from typing import Any, cast

from django.http import FileResponse, HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from mwolo.accounts.models import User
from mwolo.billing.api import HasPermission
from mwolo.billing.models import Currency
from mwolo.core.api import AuditActorMixin, RoleModelPermissions, ScopedQuerysetMixin
from mwolo.core.permissions import user_client_id

from . import delivery, services
from .models import MOBILE_METHODS, CashSession, Method, Payment, PaymentIntent, Refund


def _user(request: Request) -> User:
    return cast(User, request.user)


_ERRORS = {
    400: OpenApiResponse(description=_("Field errors.")),
    403: OpenApiResponse(description=_("The user may not do this.")),
    404: OpenApiResponse(description=_("No such record among those the user may see.")),
}


# --- Mobile money --------------------------------------------------------------------------


class PaymentIntentSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    payment_url = serializers.CharField(read_only=True)
    receipt_number = serializers.CharField(
        source="payment.receipt_number", read_only=True, default=None
    )

    class Meta:
        model = PaymentIntent
        fields = [
            "id",
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
            "status_label",
            "message",
            "payment_url",
            "receipt_number",
            "created_at",
            "expires_at",
        ]
        read_only_fields = fields


class PaymentIntentCreateSerializer(serializers.Serializer):
    client = serializers.IntegerField(
        required=False, help_text=_("Staff only: the client paying. A client pays for themself.")
    )
    provider = serializers.ChoiceField(choices=[(m.value, m.label) for m in MOBILE_METHODS])
    msisdn = serializers.CharField(max_length=20, help_text=_("The payer's number, +243…"))
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    currency = serializers.ChoiceField(choices=Currency.choices)
    invoice = serializers.IntegerField(required=False, allow_null=True)
    meter = serializers.IntegerField(
        required=False, allow_null=True, help_text=_("A prepaid meter: buys a token.")
    )


@extend_schema_view(
    list=extend_schema(summary=_("Mobile money requests of the user's scope")),
    retrieve=extend_schema(summary=_("One request, with where it stands (poll it)")),
)
class PaymentIntentViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """A client pays by mobile money (or staff for them): the push goes to the phone, the
    request is polled until paid, failed, cancelled or expired, and may be tried again."""

    queryset = PaymentIntent.objects.all()
    serializer_class = PaymentIntentSerializer
    lookup_value_converter = "int"
    filterset_fields = ["status", "provider", "client", "invoice"]

    def scoped_queryset(self) -> Any:
        return PaymentIntent.objects.select_related("payment")

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("create", "retry"):
            self.required_permission = "payments.add_paymentintent"
            return [HasPermission()]
        return [RoleModelPermissions()]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return PaymentIntentCreateSerializer if self.action == "create" else PaymentIntentSerializer

    @extend_schema(
        summary=_("Ask the client's phone for a payment"),
        request=PaymentIntentCreateSerializer,
        responses={201: PaymentIntentSerializer, **_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = PaymentIntentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        own = user_client_id(_user(request))
        client_id = own if own is not None else data.get("client")
        if client_id is None:
            raise serializers.ValidationError({"client": [_("Choose the client who pays.")]})
        intent = services.payment_intent_create(
            client_id=client_id,
            provider=data["provider"],
            msisdn=data["msisdn"],
            amount=data["amount"],
            currency=data["currency"],
            actor=_user(request),
            invoice_id=data.get("invoice"),
            meter_id=data.get("meter"),
        )
        return Response(PaymentIntentSerializer(intent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Try a failed, cancelled or expired request again"),
        request=None,
        responses={201: PaymentIntentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: int) -> Response:
        intent = services.payment_intent_retry(intent_id=pk, actor=_user(request))
        return Response(PaymentIntentSerializer(intent).data, status=status.HTTP_201_CREATED)


# --- Payments and receipts -----------------------------------------------------------------


class PaymentSerializer(serializers.ModelSerializer):
    method_label = serializers.CharField(source="get_method_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "receipt_number",
            "client",
            "method",
            "method_label",
            "amount",
            "currency",
            "credited",
            "account_currency",
            "exchange_rate",
            "operator_transaction_id",
            "payer",
            "received_at",
            "status",
            "status_label",
            "reversal_reason",
        ]
        read_only_fields = fields


class CashPaymentSerializer(serializers.Serializer):
    client = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    currency = serializers.ChoiceField(choices=Currency.choices)
    invoice = serializers.IntegerField(required=False, allow_null=True)


class BankPaymentSerializer(CashPaymentSerializer):
    bank_reference = serializers.CharField(max_length=100)


class ReverseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


@extend_schema_view(
    list=extend_schema(summary=_("Payments of the user's scope")),
    retrieve=extend_schema(summary=_("One payment")),
)
class PaymentViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Payment.objects.all()
    serializer_class = PaymentSerializer
    lookup_value_converter = "int"
    filterset_fields = ["client", "method", "status", "currency", "cash_session"]
    search_fields = ["receipt_number", "operator_transaction_id", "client__number"]
    ordering_fields = ["received_at", "receipt_number"]

    def get_permissions(self) -> list[permissions.BasePermission]:
        required = {
            "cash": "payments.add_payment",
            "bank": "payments.add_payment",
            "reverse": "payments.reverse_payment",
        }.get(self.action or "")
        if required:
            self.required_permission = required
            return [HasPermission()]
        return [RoleModelPermissions()]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {
            "cash": CashPaymentSerializer,
            "bank": BankPaymentSerializer,
            "reverse": ReverseSerializer,
        }.get(self.action or "", PaymentSerializer)

    @extend_schema(
        summary=_("Cash taken at the cashier's open till"),
        request=CashPaymentSerializer,
        responses={201: PaymentSerializer, **_ERRORS},
    )
    @action(detail=False, methods=["post"])
    def cash(self, request: Request) -> Response:
        serializer = CashPaymentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = services.payment_record_cash(
            cashier=_user(request),
            client_id=data["client"],
            amount=data["amount"],
            currency=data["currency"],
            invoice_id=data.get("invoice"),
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("A bank transfer seen on the bank statement"),
        request=BankPaymentSerializer,
        responses={201: PaymentSerializer, **_ERRORS},
    )
    @action(detail=False, methods=["post"])
    def bank(self, request: Request) -> Response:
        serializer = BankPaymentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = services.payment_record_bank(
            actor=_user(request),
            client_id=data["client"],
            amount=data["amount"],
            currency=data["currency"],
            bank_reference=data["bank_reference"],
            invoice_id=data.get("invoice"),
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Reverse a payment recorded by mistake"),
        request=ReverseSerializer,
        responses={200: PaymentSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reverse(self, request: Request, pk: int) -> Response:
        serializer = ReverseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_reverse(
            payment_id=pk, reason=serializer.validated_data["reason"], actor=_user(request)
        )
        return Response(PaymentSerializer(payment).data)

    @extend_schema(
        summary=_("The receipt as a PDF: A4, or the till printer's 80 mm ticket"),
        parameters=[OpenApiParameter("page", str, enum=["a4", "ticket80"])],
        responses={200: OpenApiResponse(description=_("application/pdf")), 404: None},
    )
    @action(detail=True, methods=["get"])
    def receipt(self, request: Request, pk: int) -> HttpResponse | FileResponse:
        payment = self.get_object()
        filename = f"{payment.receipt_number}.pdf"
        if request.query_params.get("page") == "ticket80":
            content = delivery.receipt_pdf(payment_id=payment.pk, page="ticket80")
            assert isinstance(content, bytes)  # noqa: S101 - tickets are never stored
            response = HttpResponse(content, content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{filename}"'
            return response
        stored = delivery.receipt_pdf(payment_id=payment.pk)
        assert not isinstance(stored, bytes)  # noqa: S101 - the A4 receipt is stored
        return FileResponse(stored.open("rb"), content_type="application/pdf", filename=filename)


# --- Tills ---------------------------------------------------------------------------------


class CashSessionSerializer(serializers.ModelSerializer):
    variance_cdf = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    variance_usd = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)

    class Meta:
        model = CashSession
        fields = [
            "id",
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
        ]
        read_only_fields = fields


class OpenTillSerializer(serializers.Serializer):
    agency = serializers.IntegerField()
    opening_cdf = serializers.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))
    opening_usd = serializers.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))


class CloseTillSerializer(serializers.Serializer):
    counted_cdf = serializers.DecimalField(max_digits=16, decimal_places=2)
    counted_usd = serializers.DecimalField(max_digits=16, decimal_places=2)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


@extend_schema_view(
    list=extend_schema(summary=_("Tills of the user's agencies")),
    retrieve=extend_schema(summary=_("One till, with what it should hold")),
)
class CashSessionViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    queryset = CashSession.objects.all()
    serializer_class = CashSessionSerializer
    lookup_value_converter = "int"
    filterset_fields = ["agency", "cashier"]

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("open", "close"):
            self.required_permission = "payments.add_cashsession"
            return [HasPermission()]
        return [RoleModelPermissions()]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {"open": OpenTillSerializer, "close": CloseTillSerializer}.get(
            self.action or "", CashSessionSerializer
        )

    @extend_schema(
        summary=_("Open my till"),
        request=OpenTillSerializer,
        responses={201: CashSessionSerializer, **_ERRORS},
    )
    @action(detail=False, methods=["post"])
    def open(self, request: Request) -> Response:
        serializer = OpenTillSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        session = services.cash_session_open(
            cashier=_user(request),
            agency_id=data["agency"],
            opening_cdf=data["opening_cdf"],
            opening_usd=data["opening_usd"],
        )
        return Response(CashSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Close my till with what I counted"),
        request=CloseTillSerializer,
        responses={200: CashSessionSerializer, **_ERRORS},
    )
    @action(detail=False, methods=["post"])
    def close(self, request: Request) -> Response:
        serializer = CloseTillSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        session = services.cash_session_close(
            cashier=_user(request),
            counted_cdf=data["counted_cdf"],
            counted_usd=data["counted_usd"],
            note=data["note"],
        )
        return Response(CashSessionSerializer(session).data)


# --- Refunds -------------------------------------------------------------------------------


class RefundSerializer(serializers.ModelSerializer):
    method_label = serializers.CharField(source="get_method_display", read_only=True)

    class Meta:
        model = Refund
        fields = [
            "id",
            "client",
            "method",
            "method_label",
            "amount",
            "currency",
            "reason",
            "cash_session",
            "refunded_by",
            "created_at",
        ]
        read_only_fields = fields


class RefundCreateSerializer(serializers.Serializer):
    client = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    currency = serializers.ChoiceField(choices=Currency.choices)
    method = serializers.ChoiceField(
        choices=Method.choices,
        help_text=_("cash: from your open till; otherwise given back outside the platform."),
    )
    reason = serializers.CharField(max_length=300)


@extend_schema_view(
    list=extend_schema(summary=_("Refunds of the user's scope")),
    retrieve=extend_schema(summary=_("One refund")),
)
class RefundViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Credit given back to a client: never more than their credit; cash from the open
    till of the one who gives it."""

    queryset = Refund.objects.all()
    serializer_class = RefundSerializer
    lookup_value_converter = "int"
    filterset_fields = ["client", "method", "currency", "cash_session"]

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action == "create":
            self.required_permission = "payments.add_refund"
            return [HasPermission()]
        return [RoleModelPermissions()]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return RefundCreateSerializer if self.action == "create" else RefundSerializer

    @extend_schema(
        summary=_("Give back part of a client's credit"),
        request=RefundCreateSerializer,
        responses={201: RefundSerializer, **_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refund = services.refund_record(
            actor=_user(request),
            client_id=data["client"],
            amount=data["amount"],
            currency=data["currency"],
            method=data["method"],
            reason=data["reason"],
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)
