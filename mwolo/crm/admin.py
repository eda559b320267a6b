from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportMixin

from mwolo.core.admin import ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.notifications.admin import client_timeline_context

from . import services
from .models import Client, ConnectionRequest, Site

ADDRESS_FIELDS = ("province", "territory", "commune", "address_line")
PARTY_FIELDS = (
    "kind",
    "first_name",
    "last_name",
    "middle_name",
    "company_name",
    "rccm",
    "national_id",
)


class SiteInline(admin.TabularInline):
    """The client's sites, for reading; sites are created and changed on their own page."""

    model = Site
    fields = ("reference", "label", "category", "agency", "is_active")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Client)
class ClientAdmin(ExportMixin, ScopedModelAdmin):
    list_display = ["number", "display_name", "kind", "phone", "agency", "is_active", "created_at"]
    list_filter = ["is_active", "kind", "preferred_channel", "agency", "province"]
    list_select_related = ["agency"]
    search_fields = [
        "number",
        "first_name",
        "last_name",
        "middle_name",
        "company_name",
        "phone",
        "email",
        "national_id",
        "rccm",
    ]
    autocomplete_fields = ["province", "territory", "commune", "user"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [SiteInline]
    fieldsets = [
        (None, {"fields": ["number", "agency", "is_active"]}),
        (_("Identity"), {"fields": (*PARTY_FIELDS, "kyc_document")}),
        (
            _("Contact"),
            {"fields": ["phone", "phone_alt", "email", "preferred_language", "preferred_channel"]},
        ),
        (_("Address"), {"fields": ADDRESS_FIELDS}),
        (_("Portal"), {"fields": ["user", "created_at", "updated_at"]}),
    ]

    # The page ends with the messages sent to the client (their timeline).
    change_form_template = "notifications/admin/client_change_form.html"

    @admin.display(description=_("name"), ordering="last_name")
    def display_name(self, client: Client) -> str:
        return client.display_name

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), **client_timeline_context(request, object_id)}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        services.client_save(client=obj, actor=acting_user(request))


@admin.register(Site)
class SiteAdmin(ExportMixin, ScopedModelAdmin):
    list_display = ["reference", "label", "client", "category", "agency", "territory", "is_active"]
    list_filter = ["is_active", "category", "agency", "province"]
    list_select_related = ["client", "agency", "territory__province"]
    search_fields = [
        "reference",
        "label",
        "address_line",
        "client__number",
        "client__last_name",
        "client__company_name",
    ]
    autocomplete_fields = ["client", "province", "territory", "commune"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["reference", "client", "agency", "label", "category", "is_active"]}),
        (_("Location"), {"fields": (*ADDRESS_FIELDS, "latitude", "longitude")}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def save_model(self, request: HttpRequest, obj: Site, form: Any, change: bool) -> None:
        services.site_save(site=obj, actor=acting_user(request))


class ReviewForm(forms.Form):
    rejection_reason = forms.CharField(
        label=_("Reason given to the applicant"), widget=forms.Textarea(attrs={"rows": 3})
    )


@admin.register(ConnectionRequest)
class ConnectionRequestAdmin(ScopedModelAdmin):
    list_display = [
        "reference",
        "display_name",
        "phone",
        "category",
        "agency",
        "status",
        "created_at",
    ]
    list_filter = ["status", "category", "agency", "province"]
    list_select_related = ["agency"]
    search_fields = ["reference", "first_name", "last_name", "company_name", "phone", "email"]
    actions = ["approve_requests", "reject_requests"]
    readonly_fields = [
        "reference",
        "status",
        "reviewed_by",
        "reviewed_at",
        "rejection_reason",
        "client",
        "site",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["reference", "status", "agency", "category", "message", "created_at"]}),
        (_("Applicant"), {"fields": (*PARTY_FIELDS, "phone", "email", "preferred_language")}),
        (_("Location"), {"fields": (*ADDRESS_FIELDS, "latitude", "longitude")}),
        (
            _("Review"),
            {"fields": ["reviewed_by", "reviewed_at", "rejection_reason", "client", "site"]},
        ),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requests come from the public form

    @admin.display(description=_("applicant"), ordering="last_name")
    def display_name(self, request_: ConnectionRequest) -> str:
        return request_.display_name

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not request.user.has_perm(services.REVIEW_PERMISSION):
            actions.pop("approve_requests", None)
            actions.pop("reject_requests", None)
        return actions

    def _review(
        self, request: HttpRequest, queryset: QuerySet[ConnectionRequest], *, approve: bool
    ) -> HttpResponse | None:
        form = ReviewForm(request.POST if "confirm" in request.POST else None)
        confirmed = "confirm" in request.POST and (approve or form.is_valid())
        if not confirmed:
            return TemplateResponse(
                request,
                "admin/crm/connectionrequest/review_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Approve connection requests")
                    if approve
                    else _("Reject connection requests"),
                    "opts": self.model._meta,
                    "requests": queryset,
                    "approve": approve,
                    "form": form,
                    "action": request.POST.get("action"),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        done = 0
        for connection_request in queryset:
            try:
                if approve:
                    services.connection_request_approve(
                        request_id=connection_request.pk,
                        actor=acting_user(request),
                    )
                else:
                    services.connection_request_reject(
                        request_id=connection_request.pk,
                        actor=acting_user(request),
                        reason=form.cleaned_data["rejection_reason"],
                    )
                done += 1
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                detail = (
                    getattr(error, "message", None)
                    or "; ".join(getattr(error, "messages", []))
                    or _("not allowed")
                )
                self.message_user(
                    request, f"{connection_request.reference}: {detail}", messages.ERROR
                )
        if done:
            message = (
                ngettext("%d request approved.", "%d requests approved.", done)
                if approve
                else ngettext("%d request rejected.", "%d requests rejected.", done)
            )
            self.message_user(request, message % done, messages.SUCCESS)
        return None

    @admin.action(description=_("Approve: create the client and the site"))
    def approve_requests(
        self, request: HttpRequest, queryset: QuerySet[ConnectionRequest]
    ) -> HttpResponse | None:
        return self._review(request, queryset, approve=True)

    @admin.action(description=_("Reject with a reason"))
    def reject_requests(
        self, request: HttpRequest, queryset: QuerySet[ConnectionRequest]
    ) -> HttpResponse | None:
        return self._review(request, queryset, approve=False)
