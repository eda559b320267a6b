from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mwolo.core.admin import ScopedModelAdmin

from .models import User

_django_fieldsets = list(DjangoUserAdmin.fieldsets or ())


@admin.register(User)
class UserAdmin(ScopedModelAdmin, DjangoUserAdmin):
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
