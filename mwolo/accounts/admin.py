from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mwolo.core.admin import ScopedModelAdmin

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
