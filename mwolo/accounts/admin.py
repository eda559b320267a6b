from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mwolo.core.admin import ScopedModelAdmin, acting_user

from . import services
from .models import User

_django_fieldsets = list(DjangoUserAdmin.fieldsets or ())


def _home_agency_check(form: forms.ModelForm, cleaned: dict[str, Any] | None) -> None:
    """The home-agency rule (``services.user_agency_validate``) on the form's roles."""
    cleaned = cleaned or {}
    if "agency" not in form.fields or "groups" not in form.fields or form.has_error("agency"):
        return
    roles = services.roles_of_group_names(group.name for group in cleaned.get("groups") or ())
    try:
        services.user_agency_validate(
            roles=roles,
            agency=cleaned.get("agency"),
            is_superuser=cleaned.get("is_superuser", form.instance.is_superuser),
        )
    except ValidationError as error:
        form.add_error(None, error)


class UserAddForm(AdminUserCreationForm):
    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        _home_agency_check(self, cleaned)
        return cleaned


class UserEditForm(UserChangeForm):
    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        _home_agency_check(self, cleaned)
        return cleaned


@admin.register(User)
class UserAdmin(ScopedModelAdmin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    list_display = [
        "username",
        "first_name",
        "last_name",
        "agency",
        "roles",
        "is_staff",
        "is_active",
        "last_login",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups", "agency"]
    list_select_related = ["agency__province"]
    search_fields = ["username", "first_name", "last_name", "email", "phone"]
    filter_horizontal = ["groups", "user_permissions", "additional_agencies"]
    fieldsets = [
        *_django_fieldsets[:2],
        (
            _("Agency and preferences"),
            {"fields": ["agency", "additional_agencies", "phone", "preferred_language"]},
        ),
        *_django_fieldsets[2:],
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": [
                    "username",
                    "usable_password",
                    "password1",
                    "password2",
                    "agency",
                    "groups",
                ],
            },
        )
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("roles"))
    def roles(self, user: User) -> str:
        return ", ".join(group.name for group in user.groups.all())


# --- Logins (django-axes) -------------------------------------------------------------------
# Logins, logouts and failures are the audit trail of access: nobody edits or deletes them
# in the back office, administrators included. A lock (the failed-login counter of a
# username from an address) is lifted only by the "unlock" action, with a reason, which
# leaves an audit entry (or by `manage.py axes_reset_username`, on the server).


class ReadOnlyLoginRecords:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class UnlockForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the lock is lifted"), widget=forms.Textarea(attrs={"rows": 3})
    )


# axes registers editable pages of its own (its admin module is imported before this one).
for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class LoginAttemptAdmin(ReadOnlyLoginRecords, AccessAttemptAdmin):
    actions = ["unlock"]

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.UNLOCK_PERMISSION)

    @admin.action(
        description=_("Unlock: let these usernames log in again (with a reason)"),
        permissions=["unlock"],
    )
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> Any:
        form = UnlockForm(request.POST if "confirm" in request.POST else None)
        attempts = list(queryset)
        if form.is_valid():
            cleared = services.login_locks_clear(
                attempt_ids=[attempt.pk for attempt in attempts],
                actor=acting_user(request),
                reason=form.cleaned_data["reason"],
            )
            self.message_user(
                request,
                ngettext("%d lock lifted.", "%d locks lifted.", cleared) % cleared,
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/axes/accessattempt/unlock_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Unlock logins"),
                "opts": self.model._meta,
                "attempts": attempts,
                "selected_ids": [attempt.pk for attempt in attempts],
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(AccessLog)
class LoginLogAdmin(ReadOnlyLoginRecords, AccessLogAdmin):
    pass


@admin.register(AccessFailureLog)
class LoginFailureLogAdmin(ReadOnlyLoginRecords, AccessFailureLogAdmin):
    pass
