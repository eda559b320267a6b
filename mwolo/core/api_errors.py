"""The API's one error shape (kept apart from ``api`` because DRF imports it while loading)."""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import ApplicationError


def _django_validation_payload(error: DjangoValidationError) -> dict[str, Any]:
    # Django files errors that belong to no field (model ``clean``, constraints) under
    # "__all__"; serializers call them "non_field_errors": the API uses one name.
    non_field = api_settings.NON_FIELD_ERRORS_KEY
    if hasattr(error, "error_dict"):
        return {
            non_field if field == NON_FIELD_ERRORS else field: [str(m) for m in messages]
            for field, messages in error.message_dict.items()
        }
    return {non_field: [str(m) for m in error.messages]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """One error shape for the whole API.

    Field errors: ``{"field": ["message", …], …}``; other refusals: ``{"detail": "…"}``.
    Django's ``ValidationError`` raised by services becomes a 400 like a serializer's.
    Missing or bad credentials are a 401 with a Bearer challenge (the token scheme is the
    first authenticator), so a client can tell "log in again" from "not allowed" (403).
    """
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_payload(exc))
    elif isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)
