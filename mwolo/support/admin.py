from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from mwolo.accounts.models import User
from mwolo.core.admin import ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role, user_agency_ids

from . import services
from .models import WorkOrder

PLANNING_FIELDS = [
    "kind",
    "site",
    "meter",
    "new_meter",
    "assigned_to",
    "scheduled_for",
    "instructions",
]

# Set by the services as the work order goes on: shown, never edited.
OUTCOME_FIELDS = [
    "number",
    "status",
    "agency",
    "completed_at",
    "completed_by",
    "register_kwh",
    "new_register_kwh",
    "report",
    "cancel_reason",
]


class CompleteForm(forms.Form):
    register_kwh = forms.DecimalField(
        label=_("Register read (kWh)"), min_value=0, max_digits=14, decimal_places=3
    )
    new_register_kwh = forms.DecimalField(
        label=_("New meter's register (kWh)"),
        min_value=0,
        max_digits=14,
        decimal_places=3,
        required=False,
    )
    report = forms.CharField(
        label=_("Report"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)


@admin.register(WorkOrder)
class WorkOrderAdmin(ScopedModelAdmin):
    list_display = [
        "number",
        "kind",
        "status",
        "site",
        "meter",
        "assigned_to",
        "scheduled_for",
        "completed_at",
    ]
    list_filter = ["status", "kind", "scheduled_for", "agency"]
    list_select_related = ["site", "meter", "assigned_to"]
    search_fields = ["number", "site__reference", "site__client__number", "meter__serial"]
    fields = [*PLANNING_FIELDS, *OUTCOME_FIELDS]
    readonly_fields = OUTCOME_FIELDS
    actions = ["complete_work_order", "cancel_work_orders"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_fields(request, obj) if obj is not None else PLANNING_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A planned work order changes only through its actions (complete, cancel).
        return super().has_change_permission(request, obj) and obj is None

    def has_complete_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("support.complete_workorder")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("support.change_workorder")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "assigned_to":
            technicians = User.objects.filter(
                groups__name=ROLE_GROUP_NAMES[Role.TECHNICIAN], is_active=True
            )
            if not request.user.is_superuser:
                technicians = technicians.filter(
                    agency_id__in=user_agency_ids(acting_user(request))
                )
            kwargs["queryset"] = technicians.order_by("last_name", "first_name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        actor = acting_user(request)

        class PlanningForm(form):  # type: ignore[valid-type,misc]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors or cleaned.get("site") is None:
                    return cleaned
                planned = WorkOrder(
                    **{
                        name: cleaned.get(name)
                        for name in PLANNING_FIELDS
                        if name != "instructions"
                    }
                )
                try:
                    services.work_order_check(work_order=planned, actor=actor)
                except ValidationError as error:
                    self.add_error(None, error)
                return cleaned

        return PlanningForm

    def save_model(self, request: HttpRequest, obj: WorkOrder, form: Any, change: bool) -> None:
        services.work_order_create(work_order=obj, actor=acting_user(request))

    def _page(
        self, request: HttpRequest, queryset: QuerySet[WorkOrder], form: forms.Form, title: Any
    ) -> TemplateResponse:
        return TemplateResponse(
            request,
            "admin/support/workorder/action.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "work_orders": queryset,
                "selected_ids": [work_order.pk for work_order in queryset],
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _report(self, request: HttpRequest, work_order: WorkOrder, error: Exception) -> None:
        detail = getattr(error, "message", None) or "; ".join(getattr(error, "messages", []))
        self.message_user(
            request, f"{work_order.number}: {detail or _('not allowed')}", messages.ERROR
        )

    @admin.action(description=_("Record as done"), permissions=["complete"])
    def complete_work_order(
        self, request: HttpRequest, queryset: QuerySet[WorkOrder]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Record the work orders one at a time."), messages.WARNING)
            return None
        work_order = queryset.get()
        form = CompleteForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return self._page(request, queryset, form, _("Record the work as done"))
        try:
            services.work_order_complete(
                work_order_id=work_order.pk,
                actor=acting_user(request),
                register_kwh=form.cleaned_data["register_kwh"],
                new_register_kwh=form.cleaned_data["new_register_kwh"],
                report=form.cleaned_data["report"],
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self._page(request, queryset, form, _("Record the work as done"))
        except (ApplicationError, PermissionDenied) as error:
            self._report(request, work_order, error)
            return None
        self.message_user(request, _("%s recorded as done.") % work_order.number, messages.SUCCESS)
        return None

    @admin.action(description=_("Cancel (with a reason)"), permissions=["cancel"])
    def cancel_work_orders(
        self, request: HttpRequest, queryset: QuerySet[WorkOrder]
    ) -> HttpResponse | None:
        form = CancelForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid():
            return self._page(request, queryset, form, _("Cancel work orders"))
        for work_order in queryset:
            try:
                services.work_order_cancel(
                    work_order_id=work_order.pk,
                    actor=acting_user(request),
                    reason=form.cleaned_data["reason"],
                )
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                self._report(request, work_order, error)
        return None
