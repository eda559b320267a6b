from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.formats import number_format
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mwolo.core.admin import ReadOnlyAdmin, ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import sees_all_agencies, visible_to

from . import services
from .models import (
    Disconnection,
    DisconnectionMeter,
    DunningExemption,
    DunningPolicy,
    DunningStep,
    PromiseToPay,
    PublicHoliday,
    Reminder,
)
from .selectors import cut_waits

PARKED_POSITION = 32767  # the largest a PositiveSmallIntegerField holds


def _money(amount: Decimal, currency: str) -> str:
    return f"{number_format(amount, 2, force_grouping=True)} {currency}"


def _refusal(error: Exception) -> str:
    if isinstance(error, PermissionDenied):
        return str(_("You are not allowed to do this."))
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(getattr(error, "message", error))


def _form_errors(form: forms.BaseForm, error: Exception) -> None:
    """A service's refusal on the form: field errors where the form has the field."""
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, _refusal(error))


# --- Policies ------------------------------------------------------------------------------


class StepFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept: list[services.StepSpec] = []
        for form in self.forms:
            data = form.cleaned_data or {}
            step = form.instance
            used = step.pk is not None and step.reminders.exists()
            if data.get("DELETE"):
                if used:
                    raise ValidationError(
                        _("Step %(step)s was taken for invoices: it cannot be removed.")
                        % {"step": step}
                    )
                continue
            if "action" not in data:
                continue
            if used and data["action"] != step.action:
                form.add_error("action", _("This step was taken for invoices: keep its action."))
            kept.append(
                services.StepSpec(
                    position=data["position"],
                    days_after_due=data["days_after_due"],
                    action=data["action"],
                    # Below a day is refused by the field itself, next to it.
                    min_days_after_previous=data.get("min_days_after_previous", 1),
                )
            )
        services.policy_steps_check(kept)

    def save_existing_objects(self, commit: bool = True) -> list[DunningStep]:
        if commit:
            # Positions are unique per policy and saved one step at a time: a step put in
            # the middle renumbers the ones after it. Those are moved out of the way first
            # (to the top of the column's range), so no save meets a position still taken.
            deleted = self.deleted_forms
            moving = [
                form.instance.pk
                for form in self.initial_forms
                if "position" in form.changed_data or form in deleted
            ]
            for offset, pk in enumerate(moving):
                DunningStep.objects.filter(pk=pk).update(position=PARKED_POSITION - offset)
        return super().save_existing_objects(commit)


class StepInline(admin.TabularInline):
    model = DunningStep
    formset = StepFormSet
    fields = ["position", "days_after_due", "action", "channel", "min_days_after_previous"]
    extra = 0


@admin.register(DunningPolicy)
class DunningPolicyAdmin(ScopedModelAdmin):
    list_display = ["name", "agency_name", "category", "is_active", "ladder", "minimums"]
    list_filter = ["is_active", "site_category"]
    list_select_related = ["agency"]
    search_fields = ["name"]
    inlines = [StepInline]
    fieldsets = [
        (None, {"fields": ["name", "agency", "site_category", "is_active"]}),
        (_("What is chased"), {"fields": ["minimum_cdf", "minimum_usd", "promise_max_days"]}),
        (
            _("Quiet days"),
            {"fields": ["quiet_weekends", "quiet_public_holidays", "disconnection_cutoff"]},
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DunningPolicy]:
        # Everyone who may read policies reads the ones for every agency too.
        everything = DunningPolicy.objects.all()
        mine = visible_to(everything, request.user)
        return (
            everything.filter(Q(pk__in=mine.values("pk")) | Q(agency__isnull=True))
            .select_related("agency")
            .prefetch_related("steps")
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        if obj is not None and obj.agency_id is None:
            return allowed and sees_all_agencies(request.user)
        return allowed

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "agency" and not sees_all_agencies(request.user):
            # Only administrators write the policies of every agency.
            field.required = True
            field.error_messages["required"] = _("Choose your agency.")
            field.initial = getattr(request.user, "agency_id", None)
        return field

    @admin.display(description=_("agency"), ordering="agency__code")
    def agency_name(self, policy: DunningPolicy) -> str:
        return policy.agency.name if policy.agency else str(_("every agency"))

    @admin.display(description=_("site category"), ordering="site_category")
    def category(self, policy: DunningPolicy) -> str:
        return policy.get_site_category_display() or str(_("every category"))

    @admin.display(description=_("steps"))
    def ladder(self, policy: DunningPolicy) -> str:
        steps = sorted(policy.steps.all(), key=lambda step: step.position)
        return " → ".join(str(step) for step in steps)

    @admin.display(description=_("minimum amount"))
    def minimums(self, policy: DunningPolicy) -> str:
        return f"{_money(policy.minimum_cdf, 'CDF')} · {_money(policy.minimum_usd, 'USD')}"


@admin.register(PublicHoliday)
class PublicHolidayAdmin(admin.ModelAdmin):
    list_display = ["day", "name"]
    date_hierarchy = "day"
    search_fields = ["name"]


# --- What the ladder did -------------------------------------------------------------------


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    list_display = [
        "sent_on",
        "invoice_number",
        "client",
        "step_label",
        "days_overdue",
        "amount",
        "disconnection",
    ]
    list_filter = ["step__action", "currency", "sent_on"]
    list_select_related = ["invoice", "invoice__client", "step", "disconnection__site"]
    search_fields = ["invoice__number", "invoice__client__number", "invoice__client__last_name"]
    date_hierarchy = "sent_on"
    fields = [
        "invoice",
        "step",
        "sent_on",
        "days_overdue",
        "amount",
        "cut_announced_on",
        "disconnection",
        "created_at",
    ]
    readonly_fields = [str(name) for name in fields]

    @admin.display(description=_("invoice"), ordering="invoice__number")
    def invoice_number(self, reminder: Reminder) -> str:
        return reminder.invoice.number

    @admin.display(description=_("client"))
    def client(self, reminder: Reminder) -> str:
        return str(reminder.invoice.client)

    @admin.display(description=_("step"), ordering="step__position")
    def step_label(self, reminder: Reminder) -> str:
        return str(reminder.step)

    @admin.display(description=_("amount left to pay"), ordering="amount_due")
    def amount(self, reminder: Reminder) -> str:
        return _money(reminder.amount_due, reminder.currency)


class ReconnectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_("Kept with the disconnection and in the audit trail."),
    )


def _command_state(command: Any) -> str:
    if command is None:
        return str(_("not needed"))
    return str(command.get_status_display())


class DisconnectionMeterInline(admin.TabularInline):
    model = DisconnectionMeter
    fields = ["meter", "cut_state", "cut_commands", "restore_state", "relay_reported"]
    readonly_fields = [str(name) for name in fields]
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[DisconnectionMeter]:
        return (
            super()
            .get_queryset(request)
            .select_related("disconnection", "meter", "cut_command", "restore_command")
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("disconnect command"))
    def cut_state(self, row: DisconnectionMeter) -> str:
        state = _command_state(row.cut_command)
        if cut_waits(row):
            return _("%(state)s: sent again on the next allowed day") % {"state": state}
        return state

    @admin.display(description=_("reconnect command"))
    def restore_state(self, row: DisconnectionMeter) -> str:
        return _command_state(row.restore_command) if row.disconnection.closed_at else "—"

    @admin.display(description=_("relay reported"))
    def relay_reported(self, row: DisconnectionMeter) -> str:
        return row.meter.get_relay_reported_display() or "—"


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("open", _("Cut")), ("closed", _("Reconnected"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Disconnection]
    ) -> QuerySet[Disconnection]:
        if self.value() == "open":
            return queryset.filter(closed_at=None)
        if self.value() == "closed":
            return queryset.exclude(closed_at=None)
        return queryset


@admin.register(Disconnection)
class DisconnectionAdmin(ReadOnlyAdmin):
    list_display = [
        "site",
        "client",
        "opened_on",
        "amount",
        "state",
        "commands",
        "closed_reason",
    ]
    list_filter = [OpenFilter, "closed_reason", ("agency", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["site", "client", "invoice"]
    search_fields = ["site__reference", "client__number", "client__last_name", "invoice__number"]
    date_hierarchy = "opened_on"
    inlines = [DisconnectionMeterInline]
    actions = ["reconnect"]
    fields = [
        "site",
        "client",
        "invoice",
        "opened_on",
        "opened_at",
        "amount",
        "resumes",
        "state",
        "closed_at",
        "closed_reason",
        "closed_by",
        "close_note",
        "promise",
    ]
    readonly_fields = [str(name) for name in fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Disconnection]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("meters__cut_command", "meters__restore_command")
        )

    @admin.display(description=_("overdue amount"), ordering="amount_due")
    def amount(self, episode: Disconnection) -> str:
        return _money(episode.amount_due, episode.currency)

    @admin.display(description=_("state"), ordering="closed_at")
    def state(self, episode: Disconnection) -> str:
        return str(_("Cut") if episode.is_open else _("Reconnected"))

    @admin.display(description=_("commands"))
    def commands(self, episode: Disconnection) -> SafeString:
        rows = []
        for row in episode.meters.all():
            command = row.cut_command if episode.is_open else row.restore_command
            rows.append((_command_state(command),))
        return format_html_join(", ", "{}", rows)

    @admin.action(description=_("Reconnect, with a reason"), permissions=["override"])
    def reconnect(self, request: HttpRequest, queryset: QuerySet[Disconnection]) -> Any:
        form = ReconnectForm(request.POST if "confirm" in request.POST else None)
        episodes = list(queryset.select_related("site", "client"))
        if form.is_valid():
            done = 0
            for episode in episodes:
                try:
                    services.disconnection_reconnect(
                        disconnection_id=episode.pk,
                        reason=form.cleaned_data["reason"],
                        actor=acting_user(request),
                    )
                    done += 1
                except (ApplicationError, ValidationError, PermissionDenied) as error:
                    self.message_user(request, f"{episode}: {_refusal(error)}", messages.ERROR)
            if done:
                self.message_user(
                    request,
                    ngettext("%d site reconnected.", "%d sites reconnected.", done) % done,
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "admin/dunning/reconnect_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Reconnect sites"),
                "opts": self.model._meta,
                "episodes": [
                    {"episode": episode, "amount": self.amount(episode)} for episode in episodes
                ],
                "selected_ids": [episode.pk for episode in episodes],
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def has_override_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.OVERRIDE_PERMISSION)


# --- Promises and exemptions ---------------------------------------------------------------


class PromiseForm(forms.ModelForm):
    actor: Any = None

    class Meta:
        model = PromiseToPay
        fields = ["client", "invoice", "promised_on", "amount", "currency", "reason"]
        help_texts = {"currency": _("Taken from the invoice when one is chosen.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "currency" in self.fields:  # not on the read-only page
            self.fields["currency"].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors or cleaned.get("client") is None:
            return cleaned
        try:
            services.promise_to_pay_check(
                client_id=cleaned["client"].pk,
                invoice_id=cleaned["invoice"].pk if cleaned.get("invoice") else None,
                promised_on=cleaned["promised_on"],
                amount=cleaned["amount"],
                currency=cleaned.get("currency") or None,
                reason=cleaned["reason"],
                actor=self.actor,
            )
        except (ValidationError, ApplicationError, PermissionDenied) as error:
            _form_errors(self, error)
        return cleaned


@admin.register(PromiseToPay)
class PromiseToPayAdmin(ScopedModelAdmin):
    form = PromiseForm
    list_display = ["client", "invoice", "promised_on", "amount_promised", "status", "recorded_by"]
    list_filter = ["status", "currency"]
    list_select_related = ["client", "invoice", "recorded_by"]
    search_fields = ["client__number", "client__last_name", "invoice__number"]
    date_hierarchy = "promised_on"
    autocomplete_fields = ["client", "invoice"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = acting_user(request)  # type: ignore[attr-defined]
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("amount promised"), ordering="amount")
    def amount_promised(self, promise: PromiseToPay) -> str:
        return _money(promise.amount, promise.currency)

    def save_model(self, request: HttpRequest, obj: PromiseToPay, form: Any, change: bool) -> None:
        promise = services.promise_to_pay_record(
            client_id=obj.client_id,
            invoice_id=obj.invoice_id,
            promised_on=obj.promised_on,
            amount=obj.amount,
            currency=obj.currency or None,
            reason=obj.reason,
            actor=acting_user(request),
        )
        obj.pk = promise.pk


class ExemptionForm(forms.ModelForm):
    actor: Any = None

    class Meta:
        model = DunningExemption
        fields = ["client", "site", "effect", "reason", "starts_on", "ends_on"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "starts_on" in self.fields:  # not on the read-only page
            self.fields["starts_on"].required = False
            self.fields["starts_on"].help_text = _("Empty: today.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors or cleaned.get("client") is None:
            return cleaned
        try:
            services.dunning_exemption_check(
                client_id=cleaned["client"].pk,
                site_id=cleaned["site"].pk if cleaned.get("site") else None,
                effect=cleaned["effect"],
                reason=cleaned["reason"],
                starts_on=cleaned.get("starts_on"),
                ends_on=cleaned.get("ends_on"),
                actor=self.actor,
            )
        except (ValidationError, ApplicationError, PermissionDenied) as error:
            _form_errors(self, error)
        return cleaned


@admin.register(DunningExemption)
class DunningExemptionAdmin(ScopedModelAdmin):
    form = ExemptionForm
    list_display = ["client", "site", "effect", "reason", "starts_on", "ends_on", "granted_by"]
    list_filter = ["effect"]
    list_select_related = ["client", "site", "granted_by"]
    search_fields = ["client__number", "client__last_name", "site__reference", "reason"]
    autocomplete_fields = ["client", "site"]
    actions = ["end_today"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = acting_user(request)  # type: ignore[attr-defined]
        return form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Changed only by ending it (the action); its page is read-only.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: DunningExemption, form: Any, change: bool
    ) -> None:
        exemption = services.dunning_exemption_grant(
            client_id=obj.client_id,
            site_id=obj.site_id,
            effect=obj.effect,
            reason=obj.reason,
            starts_on=obj.starts_on,
            ends_on=obj.ends_on,
            actor=acting_user(request),
        )
        obj.pk = exemption.pk

    @admin.action(description=_("End today"), permissions=["change"])
    def end_today(self, request: HttpRequest, queryset: QuerySet[DunningExemption]) -> None:
        done = 0
        for exemption in queryset:
            try:
                services.dunning_exemption_end(
                    exemption_id=exemption.pk, actor=acting_user(request)
                )
                done += 1
            except (ApplicationError, PermissionDenied) as error:
                self.message_user(request, f"{exemption}: {_refusal(error)}", messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext("%d exemption ends today.", "%d exemptions end today.", done) % done,
                messages.SUCCESS,
            )
