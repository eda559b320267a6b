from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mwolo.core.admin import ScopedModelAdmin, acting_user
from mwolo.core.exceptions import ApplicationError
from mwolo.crm.models import Channel

from . import selectors, services
from .models import MessageTemplate, Notification, NotificationAttachment
from .rendering import TemplateError

# How many messages the client's page shows; the outbox, filtered by client, has the rest.
TIMELINE_LENGTH = 50


class AttachmentInline(admin.TabularInline):
    model = NotificationAttachment
    fields = ("filename", "content_type", "size")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ScopedModelAdmin):
    """The outbox: every message to a client, as sent. Read-only; failed ones can be retried."""

    list_display = [
        "created_at",
        "client",
        "channel",
        "event",
        "recipient",
        "status",
        "attempts",
        "sent_at",
    ]
    list_filter = ["status", "channel", "event", "language"]
    list_select_related = ["client"]
    search_fields = [
        "recipient",
        "client__number",
        "client__last_name",
        "client__first_name",
        "client__company_name",
    ]
    date_hierarchy = "created_at"
    show_full_result_count = False  # the outbox grows by every message ever sent
    actions = ["retry_now"]
    inlines = [AttachmentInline]
    fieldsets = [
        (None, {"fields": ["client", "event", "channel", "language", "recipient", "about"]}),
        (_("Message"), {"fields": ["subject", "body"]}),
        (
            _("Delivery"),
            {
                "fields": [
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "sent_at",
                    "provider_message_id",
                    "last_error",
                    "idempotency_key",
                    "created_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "client",
        "event",
        "channel",
        "language",
        "recipient",
        "about",
        "subject",
        "body",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "provider_message_id",
        "last_error",
        "idempotency_key",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.RETRY_PERMISSION)

    @admin.display(description=_("about"))
    def about(self, notification: Notification) -> str:
        return str(notification.related) if notification.related_id else "—"

    @admin.action(description=_("Retry now (failed or given up)"), permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        try:
            count = services.notifications_retry(
                notification_ids=list(queryset.values_list("pk", flat=True)),
                actor=acting_user(request),
            )
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        if count:
            message = ngettext(
                "%d message will be sent again now.", "%d messages will be sent again now.", count
            )
            self.message_user(request, message % count, messages.SUCCESS)
        else:
            self.message_user(
                request, _("None of these messages had failed: nothing to retry."), messages.INFO
            )


@admin.register(MessageTemplate)
class MessageTemplateAdmin(AuditlogHistoryAdminMixin, admin.ModelAdmin):
    """The texts clients receive, per event, channel and language. Administrators edit them;
    the set itself (every event × channel × language) is fixed by the code."""

    show_auditlog_history_link = True
    list_display = ["event", "channel", "language", "subject", "updated_at"]
    list_filter = ["event", "channel", "language"]
    search_fields = ["subject", "body"]
    fields = ["event", "channel", "language", "subject", "body", "variables", "example"]
    readonly_fields = ["event", "channel", "language", "variables", "example"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is not None and obj.channel == Channel.SMS:
            fields.remove("subject")  # an SMS has none
        return fields

    @admin.display(description=_("variables you may use"))
    def variables(self, template: MessageTemplate) -> SafeString:
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><code>{{{{ {} }}}}</code> — {}</li>",
                selectors.template_variables(template.event).items(),
            ),
        )

    @admin.display(description=_("with example values"))
    def example(self, template: MessageTemplate) -> SafeString:
        try:
            text = template.render_example()
            subject = template.render_example("subject") if template.subject else ""
        except TemplateError as error:
            return format_html("<strong>{}</strong>", error)
        length = template.example_sms_summary() if template.channel == Channel.SMS else ""
        return format_html(
            '{}<pre style="white-space: pre-wrap">{}</pre>{}',
            format_html("<p><strong>{}</strong></p>", subject) if subject else "",
            text,
            format_html("<p>{}</p>", length) if length else "",
        )

    def save_model(
        self, request: HttpRequest, obj: MessageTemplate, form: Any, change: bool
    ) -> None:
        services.message_template_save(template=obj, actor=acting_user(request))


def client_timeline_context(request: HttpRequest, client_id: str) -> dict[str, Any]:
    """What the client's admin page needs to show the messages sent to them (nothing for a
    user who may not read the outbox)."""
    if not request.user.has_perm("notifications.view_notification"):
        return {}
    try:
        pk = int(client_id)
    except ValueError:
        return {}
    rows = list(selectors.client_messages(client=pk, user=request.user)[: TIMELINE_LENGTH + 1])
    return {
        "client_messages": rows[:TIMELINE_LENGTH],
        "client_messages_more": len(rows) > TIMELINE_LENGTH,
        "client_messages_url": reverse("admin:notifications_notification_changelist")
        + f"?client__id__exact={pk}",
    }
