"""Login by token, and the logged-in user's own profile: roles and what they may see."""

from typing import Any, cast

from axes.helpers import get_cool_off
from django.contrib.auth.signals import user_logged_in
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.views import TokenObtainPairView

from mwolo.agencies.models import Agency
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role, visible_to
from mwolo.crm.models import Client

from .models import User
from .services import user_roles


class RoleSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=[role.value for role in Role])
    # A field named like ``Field.label`` (the API's word for it); DRF allows it, stubs do not.
    label = serializers.CharField()  # type: ignore[assignment]


class AgencyRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agency
        fields = ["id", "code", "name"]


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.EmailField()
    preferred_language = serializers.CharField()
    roles = RoleSerializer(many=True)
    agency = AgencyRefSerializer(allow_null=True, help_text=_("Home agency (employees)."))
    agencies = AgencyRefSerializer(many=True, help_text=_("Agencies whose records the user sees."))
    client_number = serializers.CharField(
        allow_null=True, help_text=_("Number of the client file the user logs in as, if any.")
    )


def _profile(user: User) -> dict[str, Any]:
    client_number = Client.objects.filter(user=user).values_list("number", flat=True).first()
    return {
        "id": user.pk,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "preferred_language": user.preferred_language,
        "roles": [
            {"code": role.value, "label": role.label}
            for role in sorted(user_roles(user), key=list(Role).index)
        ],
        "agency": user.agency,
        "agencies": visible_to(Agency.objects.order_by("name"), user),
        "client_number": client_number,
    }


class MeView(APIView):
    """Any logged-in user, employee or client, reads their own profile."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MeSerializer, summary=_("The logged-in user's profile"))
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(_profile(cast(User, request.user))).data)


class TokenObtainView(TokenObtainPairView):
    """simplejwt's login, recorded and locked like the session login (django-axes).

    axes refuses a locked-out attempt, but flags the lock on the request it is given:
    DRF's, which axes' middleware never sees; so the lock is told here (429), not passed
    off as a wrong password. simplejwt sends no ``user_logged_in``: sending it records
    the login (axes' access log, ``last_login``) and clears past failures, as a session
    login does.
    """

    @extend_schema(
        summary=_("Obtain an access and a refresh token with a username and password"),
        responses={
            200: TokenObtainPairSerializer,
            401: OpenApiResponse(description=_("Wrong username or password.")),
            429: OpenApiResponse(description=_("Too many failed attempts: account locked.")),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = cast(TokenObtainPairSerializer, self.get_serializer(data=request.data))
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise ApplicationError(_locked_message(), status=429) from None
            raise
        user = serializer.user
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response(serializer.validated_data)


def _locked_message() -> str:
    cool_off = get_cool_off()
    if cool_off is None:
        return gettext("Too many failed attempts: this account is locked. Ask an administrator.")
    message = gettext("Too many failed attempts: this account is locked for %(minutes)d minutes.")
    return message % {"minutes": max(1, round(cool_off.total_seconds() / 60))}
