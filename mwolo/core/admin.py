from typing import Any, cast

from auditlog.mixins import AuditlogHistoryAdminMixin
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from mwolo.accounts.models import User

from .permissions import visible_to


def acting_user(request: HttpRequest) -> User:
    """The logged-in employee (the admin lets no anonymous user reach an action)."""
    return cast(User, request.user)


class ScopedModelAdmin(AuditlogHistoryAdminMixin, admin.ModelAdmin):
    """An admin that lists, opens and offers only the rows the user may see.

    Lists and detail pages go through ``visible_to``; so do the choices of every foreign
    key to a scoped model, so an employee cannot file a record under another agency.
    Each object also gets its audit history page (who changed what, before/after).
    """

    show_auditlog_history_link = True
    # Pages of 50 rows load fast on a mobile connection; search finds the rest.
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return visible_to(super().get_queryset(request), request.user)

    def _limit_choices(self, db_field: Any, request: HttpRequest, kwargs: dict) -> None:
        related = db_field.related_model
        if hasattr(related, "access") and "queryset" not in kwargs:
            kwargs["queryset"] = visible_to(related._default_manager.all(), request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._limit_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._limit_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def auditlog_history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        # auditlog renders a broken page (500) for an object the user may not see.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().auditlog_history_view(request, object_id, extra_context)

    @admin.display(description=_("change history"))
    def auditlog_link(self, obj: models.Model) -> SafeString:
        opts = self.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_auditlog", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("see"))


class ReadOnlyAdmin(ScopedModelAdmin):
    """Records written only by the platform: staff read them, never edit them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
