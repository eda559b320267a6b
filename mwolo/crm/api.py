"""Clients, sites and connection requests over the API.

Reads go through ``visible_to`` (``ScopedQuerysetMixin``); writes build the model instance
and hand it to ``crm.services``, which validates it, checks the agency scope and saves it.
"""

from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from mwolo.accounts.models import User
from mwolo.agencies.models import Agency
from mwolo.core.api import AuditActorMixin, RoleModelPermissions, ScopedQuerysetMixin
from mwolo.core.permissions import visible_to
from mwolo.core.throttling import PublicFormThrottle

from . import services
from .models import Client, ConnectionRequest, Site


def _actor(serializer: serializers.Serializer) -> User:
    # Only authenticated users with the model's add/change permission get this far.
    return cast(User, serializer.context["request"].user)


class VisiblePrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related row the requesting user may see; any other id is as unknown as a missing one."""

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if queryset is None:
            raise ImproperlyConfigured("VisiblePrimaryKeyRelatedField needs a queryset.")
        return visible_to(queryset, self.context["request"].user)


class ServiceSavedSerializer(serializers.ModelSerializer):
    """Builds or changes the instance, then lets ``save_instance`` (a service) validate and save.

    A new record's number or reference may be given at creation only: ``*CreateSerializer``
    subclasses leave it writable.
    """

    def save_instance(self, instance: Any) -> Any:
        raise ImproperlyConfigured(f"{type(self).__name__} must say which service saves it.")

    def create(self, validated_data: dict[str, Any]) -> Any:
        model: Any = self.Meta.model
        return self.save_instance(model(**validated_data))

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        for field, value in validated_data.items():
            setattr(instance, field, value)
        return self.save_instance(instance)


class ScopedRecordViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, read, create and change (never delete) the records of the user's scope."""

    lookup_value_converter = "int"
    serializer_class: type[serializers.BaseSerializer]
    create_serializer_class: type[serializers.BaseSerializer]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return self.create_serializer_class if self.action == "create" else self.serializer_class


# --- Clients ------------------------------------------------------------------------------


class ClientSerializer(ServiceSavedSerializer):
    display_name = serializers.CharField(read_only=True)
    agency_code = serializers.CharField(source="agency.code", read_only=True)

    class Meta:
        model = Client
        fields = [
            "id",
            "number",
            "kind",
            "display_name",
            "first_name",
            "last_name",
            "middle_name",
            "company_name",
            "rccm",
            "national_id",
            "phone",
            "phone_alt",
            "email",
            "preferred_language",
            "preferred_channel",
            "agency",
            "agency_code",
            "province",
            "territory",
            "commune",
            "address_line",
            "is_active",
            "created_at",
            "updated_at",
        ]
        # The number identifies the client on invoices and receipts: set once, at creation.
        read_only_fields = ["number", "created_at", "updated_at"]

    def save_instance(self, instance: Client) -> Client:
        return services.client_save(client=instance, actor=_actor(self))


class ClientCreateSerializer(ClientSerializer):
    class Meta(ClientSerializer.Meta):
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"number": {"help_text": _("Given automatically when left empty.")}}


@extend_schema_view(
    list=extend_schema(summary=_("Clients of the agencies the user works for")),
    retrieve=extend_schema(summary=_("One client file")),
    create=extend_schema(summary=_("Register a client")),
    update=extend_schema(summary=_("Change a client file")),
    partial_update=extend_schema(summary=_("Change some fields of a client file")),
)
class ClientViewSet(ScopedRecordViewSet):
    """Employees see and change the clients of their agencies; a client reads their own file."""

    queryset = Client.objects.all()
    serializer_class = ClientSerializer
    create_serializer_class = ClientCreateSerializer
    filterset_fields = ["agency", "kind", "is_active"]
    search_fields = ["number", "first_name", "last_name", "middle_name", "company_name", "phone"]
    ordering_fields = ["number", "last_name", "company_name", "created_at"]

    def scoped_queryset(self) -> QuerySet[Client]:
        return Client.objects.select_related("agency")


# --- Sites --------------------------------------------------------------------------------


class SiteSerializer(ServiceSavedSerializer):
    client = VisiblePrimaryKeyRelatedField(queryset=Client.objects.all())
    client_number = serializers.CharField(source="client.number", read_only=True)
    client_name = serializers.CharField(source="client.display_name", read_only=True)
    agency_code = serializers.CharField(source="agency.code", read_only=True)

    class Meta:
        model = Site
        fields = [
            "id",
            "reference",
            "label",
            "category",
            "client",
            "client_number",
            "client_name",
            "agency",
            "agency_code",
            "province",
            "territory",
            "commune",
            "address_line",
            "latitude",
            "longitude",
            "is_active",
            "created_at",
            "updated_at",
        ]
        # The reference identifies the site on work orders and meters: set once.
        read_only_fields = ["reference", "created_at", "updated_at"]

    def save_instance(self, instance: Site) -> Site:
        return services.site_save(site=instance, actor=_actor(self))


class SiteCreateSerializer(SiteSerializer):
    class Meta(SiteSerializer.Meta):
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"reference": {"help_text": _("Given automatically when left empty.")}}


class SiteFilter(filters.FilterSet):
    # By id, not by choice among all clients: an id outside the user's scope must look
    # like any id without sites, not like an unknown one.
    client = filters.NumberFilter(field_name="client_id")

    class Meta:
        model = Site
        fields = ["client", "agency", "category", "is_active"]


@extend_schema_view(
    list=extend_schema(summary=_("Sites of the agencies the user works for")),
    retrieve=extend_schema(summary=_("One site")),
    create=extend_schema(summary=_("Register a site")),
    update=extend_schema(summary=_("Change a site")),
    partial_update=extend_schema(summary=_("Change some fields of a site")),
)
class SiteViewSet(ScopedRecordViewSet):
    """Employees see and change the sites of their agencies; a client reads their own."""

    queryset = Site.objects.all()
    serializer_class = SiteSerializer
    create_serializer_class = SiteCreateSerializer
    filterset_class = SiteFilter
    search_fields = ["reference", "label", "address_line", "client__number"]
    ordering_fields = ["reference", "created_at"]

    def scoped_queryset(self) -> QuerySet[Site]:
        return Site.objects.select_related("agency", "client")


# --- Connection requests ------------------------------------------------------------------


class ConnectionRequestSubmitSerializer(serializers.ModelSerializer):
    """What a visitor fills in on the public form."""

    agency = serializers.PrimaryKeyRelatedField(queryset=Agency.objects.filter(is_active=True))

    class Meta:
        model = ConnectionRequest
        fields = ConnectionRequest.APPLICANT_FIELDS

    def create(self, validated_data: dict[str, Any]) -> ConnectionRequest:
        return services.connection_request_submit(request=ConnectionRequest(**validated_data))


class ConnectionRequestReceiptSerializer(serializers.ModelSerializer):
    """All a visitor gets back: the reference to quote, and the status."""

    class Meta:
        model = ConnectionRequest
        fields = ["reference", "status"]
        read_only_fields = fields


class ConnectionRequestSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True)
    agency_code = serializers.CharField(source="agency.code", read_only=True)

    class Meta:
        model = ConnectionRequest
        fields = [
            "id",
            "reference",
            "status",
            "kind",
            "display_name",
            "first_name",
            "last_name",
            "middle_name",
            "company_name",
            "rccm",
            "national_id",
            "phone",
            "email",
            "preferred_language",
            "category",
            "agency",
            "agency_code",
            "province",
            "territory",
            "commune",
            "address_line",
            "latitude",
            "longitude",
            "message",
            "reviewed_by",
            "reviewed_at",
            "rejection_reason",
            "client",
            "site",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ConnectionRequestApproveSerializer(serializers.Serializer):
    existing_client = VisiblePrimaryKeyRelatedField(
        queryset=Client.objects.all(),
        required=False,
        allow_null=True,
        help_text=_("Attach the new site to this client instead of creating a client."),
    )


class ConnectionRequestRejectSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, help_text=_("Told to the applicant: why the request is refused.")
    )


class CanReviewConnectionRequests(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user.is_authenticated and user.has_perm(services.REVIEW_PERMISSION))


_REVIEW_RESPONSES = {
    200: ConnectionRequestSerializer,
    400: OpenApiResponse(description=_("Field errors.")),
    404: OpenApiResponse(description=_("No such request among those the user may review.")),
    409: OpenApiResponse(description=_("The request was already approved or rejected.")),
}


@extend_schema_view(
    list=extend_schema(summary=_("Connection requests to the user's agencies")),
    retrieve=extend_schema(summary=_("One connection request")),
)
class ConnectionRequestViewSet(
    AuditActorMixin,
    ScopedQuerysetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Visitors submit requests; staff of the agency read them, approve or reject them."""

    queryset = ConnectionRequest.objects.all()
    lookup_value_converter = "int"
    filterset_fields = ["status", "category", "agency"]
    search_fields = ["reference", "first_name", "last_name", "company_name", "phone", "email"]
    ordering_fields = ["reference", "created_at", "status"]

    def scoped_queryset(self) -> QuerySet[ConnectionRequest]:
        return ConnectionRequest.objects.select_related("agency")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        by_action: dict[str, type[serializers.BaseSerializer]] = {
            "create": ConnectionRequestSubmitSerializer,
            "approve": ConnectionRequestApproveSerializer,
            "reject": ConnectionRequestRejectSerializer,
        }
        return by_action.get(self.action or "", ConnectionRequestSerializer)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action == "create":
            return [permissions.AllowAny()]
        if self.action in ("approve", "reject"):
            return [CanReviewConnectionRequests()]
        return [RoleModelPermissions()]

    def get_throttles(self) -> list[BaseThrottle]:
        # Only the public form is throttled: it is the one write open to anyone.
        if self.action == "create":
            return [PublicFormThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary=_("Apply for a connection (public)"),
        request=ConnectionRequestSubmitSerializer,
        responses={
            201: ConnectionRequestReceiptSerializer,
            400: OpenApiResponse(description=_("Field errors.")),
            429: OpenApiResponse(description=_("Too many requests from this address.")),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submitted = serializer.save()
        # Never echo what was sent: the reference is all the applicant needs to follow up.
        receipt = ConnectionRequestReceiptSerializer(submitted)
        return Response(receipt.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=_("Approve a request: creates (or reuses) the client and creates the site"),
        request=ConnectionRequestApproveSerializer,
        responses=_REVIEW_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: int) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approved = services.connection_request_approve(
            request_id=pk,
            actor=cast(User, request.user),
            existing_client=serializer.validated_data.get("existing_client"),
        )
        return Response(ConnectionRequestSerializer(approved).data)

    @extend_schema(
        summary=_("Reject a request with the reason the applicant will be told"),
        request=ConnectionRequestRejectSerializer,
        responses=_REVIEW_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: int) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rejected = services.connection_request_reject(
            request_id=pk,
            actor=cast(User, request.user),
            reason=serializer.validated_data["reason"],
        )
        return Response(ConnectionRequestSerializer(rejected).data)
