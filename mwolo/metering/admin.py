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
from mwolo.core.admin import ReadOnlyAdmin, ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError

from . import services
from .models import (
    HeadendRejection,
    Meter,
    MeterAlarm,
    MeterCommand,
    MeterInstallation,
    MeterReading,
    PaymentMode,
    PrepaidToken,
    Relay,
)


class InstallationInline(admin.TabularInline):
    model = MeterInstallation
    fields = ("site", "installed_at", "installed_register_kwh", "removed_at", "removal_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MeterRegistrationForm(forms.ModelForm):
    """A new meter, with the prepaid secrets its vendor gives (checked as the service does).

    The secret is never sent back to the browser, not even with a form to correct; once
    saved it is stored encrypted and shown nowhere.
    """

    token_secret = forms.CharField(
        label=_("OpenPAYGO secret key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Prepaid meters only: the 32 hexadecimal digits the vendor gives with the meter. "
            "Stored encrypted, never shown again."
        ),
    )
    token_count = forms.IntegerField(
        label=_("Starting token count"),
        required=False,
        help_text=_("Prepaid meters only: the count the vendor gives (1 for a new meter)."),
    )
    actor: User | None = None  # set by MeterAdmin.get_form

    class Meta:
        model = Meter
        fields = [
            "serial",
            "vendor",
            "hardware_model",
            "payment_mode",
            "agency",
            "register_capacity_kwh",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "payment_mode" not in cleaned or "agency" not in cleaned:
            return cleaned  # their own errors are shown
        try:
            cleaned["token_secret"] = services.meter_register_check(
                agency_id=cleaned["agency"].pk if cleaned["agency"] else None,
                payment_mode=cleaned["payment_mode"],
                actor=self.actor,
                token_secret=cleaned.get("token_secret") or "",
                token_count=cleaned.get("token_count"),
            )
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                if self.has_error(name):
                    continue  # the field's own error (e.g. not a number) says it better
                for problem in problems:
                    self.add_error(name if name in self.fields else None, problem)
        return cleaned


class MeterActionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
    energy_kwh = forms.IntegerField(label=_("Credit (kWh)"), required=False, min_value=1)


@admin.register(Meter)
class MeterAdmin(ScopedModelAdmin):
    list_display = [
        "serial",
        "payment_mode",
        "agency",
        "site",
        "relay_wanted",
        "relay_reported",
        "online",
        "last_seen_at",
        "last_energy_kwh",
    ]
    list_filter = ["online", "payment_mode", "relay_wanted", "relay_reported", "agency"]
    list_select_related = ["agency", "site"]
    search_fields = ["serial", "site__reference", "site__client__number", "vendor"]
    readonly_fields = [
        "site",
        "relay_wanted",
        "relay_wanted_reason",
        "relay_wanted_at",
        "relay_deadline",
        "relay_reported",
        "relay_reported_at",
        "online",
        "last_seen_at",
        "last_energy_kwh",
        "last_reading_at",
        "credit_kwh",
        "firmware",
        "token_count",
        "disagreements",
    ]
    fieldsets = [
        (None, {"fields": ["serial", "vendor", "hardware_model", "payment_mode", "agency"]}),
        (_("Installation"), {"fields": ["site", "register_capacity_kwh"]}),
        (
            _("Relay"),
            {
                "fields": [
                    "relay_wanted",
                    "relay_wanted_reason",
                    "relay_wanted_at",
                    "relay_deadline",
                    "relay_reported",
                    "relay_reported_at",
                    "disagreements",
                ]
            },
        ),
        (
            _("Communication"),
            {
                "fields": [
                    "online",
                    "last_seen_at",
                    "firmware",
                    "last_energy_kwh",
                    "last_reading_at",
                ]
            },
        ),
        (_("Prepaid"), {"fields": ["credit_kwh", "token_count"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["serial", "vendor", "hardware_model", "payment_mode", "agency"]}),
        (_("Installation"), {"fields": ["register_capacity_kwh"]}),
        (
            _("Prepaid"),
            {
                "fields": ["token_secret", "token_count"],
                "description": _("For a prepaid meter only; leave empty for a postpaid one."),
            },
        ),
    ]
    inlines = [InstallationInline]
    actions = ["connect_meters", "disconnect_meters", "read_meters", "issue_tokens"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The relay, installation and secrets change only through the actions and services.
        return super().has_change_permission(request, obj) and obj is None

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return [] if obj is None else super().get_inlines(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        # The secrets are form fields, not model fields (the model never edits them).
        kwargs.update(form=MeterRegistrationForm, fields=MeterRegistrationForm.Meta.fields)
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = acting_user(request)  # type: ignore[attr-defined]
        return form

    def save_model(self, request: HttpRequest, obj: Meter, form: Any, change: bool) -> None:
        prepaid = obj.payment_mode == PaymentMode.PREPAID
        services.meter_register(
            meter=obj,
            actor=acting_user(request),
            token_secret=form.cleaned_data["token_secret"],
            token_count=form.cleaned_data["token_count"] if prepaid else 1,
        )

    def _confirm(
        self, request: HttpRequest, queryset: QuerySet[Meter], *, title: Any, token: bool = False
    ) -> TemplateResponse | dict[str, Any]:
        """The confirmation page, or the confirmed form's cleaned data: a switch needs a
        reason, a token its credit (its reason is optional)."""
        form = MeterActionForm(request.POST if "confirm" in request.POST else None)
        required = "energy_kwh" if token else "reason"
        if "confirm" in request.POST and form.is_valid():
            if form.cleaned_data[required] not in (None, ""):
                return form.cleaned_data
            form.add_error(required, _("This field is required."))
        return TemplateResponse(
            request,
            "admin/metering/meter/action_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "meters": queryset,
                "selected_ids": [meter.pk for meter in queryset],
                "form": form,
                "token": token,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _each(self, request: HttpRequest, queryset: QuerySet[Meter], work: Any) -> None:
        done = 0
        for meter in queryset:
            try:
                work(meter)
                done += 1
            except (ApplicationError, ValidationError, PermissionDenied) as error:
                detail = getattr(error, "message", None) or "; ".join(
                    getattr(error, "messages", [])
                )
                self.message_user(
                    request, f"{meter.serial}: {detail or _('not allowed')}", messages.ERROR
                )
        if done:
            self.message_user(request, _("%d meters: request recorded.") % done, messages.SUCCESS)

    def _switch(
        self, request: HttpRequest, queryset: QuerySet[Meter], wanted: str
    ) -> HttpResponse | None:
        title = _("Connect meters") if wanted == Relay.ON else _("Disconnect meters")
        confirmed = self._confirm(request, queryset, title=title)
        if isinstance(confirmed, TemplateResponse):
            return confirmed
        reason = confirmed["reason"]
        self._each(
            request,
            queryset,
            lambda meter: services.meter_relay_request(
                meter_id=meter.pk,
                wanted=wanted,
                why=Meter.RelayReason.NORMAL if wanted == Relay.ON else Meter.RelayReason.STAFF,
                source=MeterCommand.Source.STAFF,
                reason=reason,
                actor=acting_user(request),
            ),
        )
        return None

    @admin.action(description=_("Connect (with a reason)"), permissions=["switch"])
    def connect_meters(
        self, request: HttpRequest, queryset: QuerySet[Meter]
    ) -> HttpResponse | None:
        return self._switch(request, queryset, Relay.ON)

    @admin.action(description=_("Disconnect (with a reason)"), permissions=["switch"])
    def disconnect_meters(
        self, request: HttpRequest, queryset: QuerySet[Meter]
    ) -> HttpResponse | None:
        return self._switch(request, queryset, Relay.OFF)

    @admin.action(description=_("Read now"), permissions=["view"])
    def read_meters(self, request: HttpRequest, queryset: QuerySet[Meter]) -> None:
        self._each(
            request,
            queryset,
            lambda meter: services.meter_read_request(
                meter_id=meter.pk, actor=acting_user(request)
            ),
        )

    @admin.action(description=_("Issue a prepaid token"), permissions=["issue_token"])
    def issue_tokens(self, request: HttpRequest, queryset: QuerySet[Meter]) -> HttpResponse | None:
        confirmed = self._confirm(request, queryset, title=_("Issue prepaid tokens"), token=True)
        if isinstance(confirmed, TemplateResponse):
            return confirmed
        issued: list[PrepaidToken] = []
        self._each(
            request,
            queryset,
            lambda meter: issued.append(
                services.prepaid_token_issue(
                    meter_id=meter.pk,
                    energy_kwh=confirmed["energy_kwh"],
                    reason=confirmed["reason"],
                    actor=acting_user(request),
                )
            ),
        )
        # The person at the counter reads the token to the client: show it right away.
        for token in issued:
            self.message_user(
                request,
                _("%(serial)s: token %(token)s (%(kwh)d kWh)")
                % {"serial": token.meter.serial, "token": token.token, "kwh": token.energy_kwh},
                messages.SUCCESS,
            )
        return None

    def has_switch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.switch_meter")

    def has_issue_token_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.issue_token")


@admin.register(MeterReading)
class MeterReadingAdmin(ReadOnlyAdmin):
    list_display = ["meter", "taken_at", "energy_kwh", "source", "flag", "reviewed", "reviewed_by"]
    list_filter = ["source", "flag", "reviewed"]
    list_select_related = ["meter", "reviewed_by"]
    search_fields = ["meter__serial"]
    show_full_result_count = False  # counting millions of rows on every page is slow
    actions = ["mark_reviewed"]

    @admin.action(description=_("Mark as reviewed"), permissions=["review"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[MeterReading]) -> None:
        count = services.readings_mark_reviewed(
            reading_ids=list(queryset.values_list("pk", flat=True)), actor=acting_user(request)
        )
        self.message_user(request, _("%d readings marked as reviewed.") % count, messages.SUCCESS)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("metering.change_meterreading")


@admin.register(MeterCommand)
class MeterCommandAdmin(ReadOnlyAdmin):
    list_display = [
        "issued_at",
        "meter",
        "action",
        "status",
        "source",
        "requested_by",
        "attempts",
        "acknowledged_at",
    ]
    list_filter = ["status", "action", "source"]
    list_select_related = ["meter", "requested_by"]
    search_fields = ["meter__serial", "uuid"]
    show_full_result_count = False


@admin.register(MeterAlarm)
class MeterAlarmAdmin(ReadOnlyAdmin):
    list_display = ["kind", "meter", "opened_at", "last_seen_at", "occurrences", "closed_at"]
    list_filter = ["kind", ("closed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["meter"]
    search_fields = ["meter__serial"]


@admin.register(PrepaidToken)
class PrepaidTokenAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "meter", "energy_kwh", "token", "count", "created_by"]
    list_select_related = ["meter", "created_by"]
    search_fields = ["meter__serial", "token"]


@admin.register(HeadendRejection)
class HeadendRejectionAdmin(admin.ModelAdmin):
    list_display = ["day", "reason", "count", "last_topic"]
    list_filter = ["reason"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
