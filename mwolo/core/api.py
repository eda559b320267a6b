"""What every API endpoint shares: pagination, permissions and scoping (errors: api_errors)."""

from typing import TYPE_CHECKING, Any

from auditlog.context import auditlog_value
from django.db import models
from rest_framework import permissions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from .permissions import visible_to

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    # Mixins are typed as the views they are mixed into (one ``request`` type for mypy).
    _ViewBase = GenericAPIView
else:
    _ViewBase = object


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200


class RoleModelPermissions(permissions.DjangoModelPermissions):
    """Model permissions from the user's roles, reads included (``view_<model>``).

    Which rows are visible is the scoping's business (``ScopedQuerysetMixin``).
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class ScopedQuerysetMixin(_ViewBase):
    """``get_queryset`` returns only the rows the requesting user may see."""

    queryset: models.QuerySet

    def get_queryset(self) -> models.QuerySet:
        return visible_to(self.scoped_queryset(), self.request.user)

    def scoped_queryset(self) -> models.QuerySet:
        """The unscoped query (with its joins); override to add select_related/annotations."""
        return self.queryset.all()


class AuditActorMixin(_ViewBase):
    """Audit entries written by this view name the API user as their actor.

    auditlog's middleware reads ``request.user`` before DRF has authenticated a token
    (JWT) request, so without this a change made with a token is logged without an actor.
    The middleware's context is completed in place: opening a nested ``set_actor`` would
    leave the middleware's signal receiver connected for good.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not request.user.is_authenticated:
            return
        try:
            context = auditlog_value.get()
        except LookupError:  # no AuditlogMiddleware in this request
            return
        if context.get("actor") is None:
            context["actor"] = request.user
