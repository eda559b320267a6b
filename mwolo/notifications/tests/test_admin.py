"""The outbox and the templates in the back office; the client's timeline; scoping."""

import html

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mwolo.accounts.tests.factories import (
    AdministratorFactory,
    EmployeeFactory,
    PortalUserFactory,
)
from mwolo.core.permissions import Role
from mwolo.crm.tests.factories import ClientFactory
from mwolo.geo.tests.factories import address
from mwolo.notifications import services
from mwolo.notifications.models import MessageTemplate, Notification
from mwolo.notifications.selectors import client_messages

from .factories import NotificationFactory

pytestmark = pytest.mark.django_db

OUTBOX = "admin:notifications_notification_changelist"


@pytest.fixture
def foreign_client(lubumbashi):
    return ClientFactory(
        agency=lubumbashi, last_name="Katumbi", **address("Kampemba", "Lubumbashi")
    )


# --- Scoping ------------------------------------------------------------------------------


def test_client_messages_are_scoped_like_the_client(sms_client, foreign_client, gombe, lubumbashi):
    own = NotificationFactory(client=sms_client)
    NotificationFactory(client=foreign_client)
    portal = PortalUserFactory()
    sms_client.user = portal
    sms_client.save()
    other_portal = PortalUserFactory()
    foreign_client.user = other_portal
    foreign_client.save()

    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)
    foreign_manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=lubumbashi)

    assert list(client_messages(client=sms_client, user=manager)) == [own]
    assert list(client_messages(client=sms_client, user=foreign_manager)) == []
    assert list(client_messages(client=sms_client, user=portal)) == [own]
    assert list(client_messages(client=sms_client, user=other_portal)) == []
    assert list(client_messages(client=sms_client, user=AnonymousUser())) == []
    assert list(client_messages(client=sms_client, user=AdministratorFactory())) == [own]


def test_the_outbox_lists_only_the_managers_agency(client, sms_client, foreign_client, gombe):
    NotificationFactory(client=sms_client, recipient="+243812345678")
    NotificationFactory(client=foreign_client, recipient="+243899999999")
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    page = client.get(reverse(OUTBOX)).content.decode()

    assert "+243812345678" in page
    assert "+243899999999" not in page


def test_another_agencys_message_cannot_be_opened(client, foreign_client, gombe):
    foreign = NotificationFactory(client=foreign_client)
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    page = client.get(
        reverse("admin:notifications_notification_change", args=[foreign.pk]), follow=True
    )

    assert page.redirect_chain[-1][0] == reverse("admin:index")


@pytest.mark.parametrize("who", ["anonymous", "client", "hr_officer", "technician"])
def test_the_outbox_is_closed_to_those_who_may_not_read_it(client, sms_client, gombe, who):
    NotificationFactory(client=sms_client)
    if who == "client":
        portal = PortalUserFactory()
        sms_client.user = portal
        sms_client.save()
        client.force_login(portal)
    elif who != "anonymous":
        client.force_login(EmployeeFactory(role=Role(who), agency=gombe))

    response = client.get(reverse(OUTBOX))

    assert response.status_code in {302, 403}


def test_the_outbox_is_read_only_and_searchable(client, sms_client, gombe):
    message = NotificationFactory(client=sms_client)
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    found = client.get(reverse(OUTBOX), {"q": sms_client.number}).content.decode()
    detail = client.get(reverse("admin:notifications_notification_change", args=[message.pk]))

    assert sms_client.number in found
    assert detail.status_code == 200
    assert 'name="body"' not in detail.content.decode()  # shown, not editable
    assert client.get(reverse("admin:notifications_notification_add")).status_code == 403


# --- Retry now ------------------------------------------------------------------------------


def test_retry_now_in_the_admin_sends_a_failed_message_again(client, sms_client, gombe):
    failed = NotificationFactory(
        client=sms_client, status=Notification.Status.FAILED, attempts=2, last_error="HTTP 503"
    )
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    response = client.post(
        reverse(OUTBOX),
        {"action": "retry_now", "_selected_action": [failed.pk]},
        follow=True,
    )

    assert "1 message sera renvoyé maintenant." in response.content.decode()
    failed.refresh_from_db()
    # The test settings run tasks at once; without a gateway the SMS goes to the console.
    assert failed.status in {Notification.Status.QUEUED, Notification.Status.SENT}


def test_a_cashier_may_read_the_outbox_but_not_retry(client, sms_client, gombe):
    NotificationFactory(client=sms_client, status=Notification.Status.FAILED)
    client.force_login(EmployeeFactory(role=Role.CASHIER, agency=gombe))

    page = client.get(reverse(OUTBOX))

    assert page.status_code == 200
    assert "retry_now" not in page.content.decode()


# --- Templates ------------------------------------------------------------------------------


def _template_url(template: MessageTemplate) -> str:
    return reverse("admin:notifications_messagetemplate_change", args=[template.pk])


@pytest.fixture
def reminder_sms():
    return MessageTemplate.objects.get(event="reminder", channel="sms", language="fr")


@pytest.fixture
def administrator(client):
    user = AdministratorFactory()
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("Rappel {% if %}", "Erreur de syntaxe dans le modèle"),
        ("Rappel {{ montant }} CDF", "Variable inconnue « montant »"),
        ("", "Ce champ est obligatoire."),
    ],
)
def test_a_broken_template_is_refused_with_a_clear_error_and_not_saved(
    client, administrator, reminder_sms, body, error
):
    before = reminder_sms.body

    response = client.post(_template_url(reminder_sms), {"subject": "", "body": body})

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["body"])
    reminder_sms.refresh_from_db()
    assert reminder_sms.body == before


def test_an_sms_template_offers_no_subject_and_an_email_needs_one(client, administrator):
    sms = MessageTemplate.objects.get(event="reminder", channel="sms", language="fr")
    email = MessageTemplate.objects.get(event="reminder", channel="email", language="fr")

    assert 'name="subject"' not in client.get(_template_url(sms)).content.decode()
    response = client.post(_template_url(email), {"subject": " ", "body": email.body})

    assert "Un e-mail doit avoir un objet." in " ".join(
        response.context["adminform"].form.errors["subject"]
    )
    email.refresh_from_db()
    assert email.subject == "Rappel : facture {{ invoice_number }} impayée"


def test_an_administrator_changes_a_text_and_the_change_is_recorded(
    client, administrator, reminder_sms, sms_client
):
    response = client.post(
        _template_url(reminder_sms),
        {"subject": "", "body": "Mwolo Energy: {{ client_name }}, payez {{ amount_due }}."},
    )

    assert response.status_code == 302
    reminder_sms.refresh_from_db()
    assert reminder_sms.body == "Mwolo Energy: {{ client_name }}, payez {{ amount_due }}."
    assert LogEntry.objects.get_for_object(reminder_sms).get().actor == administrator
    from mwolo.notifications.events import EVENTS

    [sms] = services.notification_send(
        client=sms_client, event="reminder", context=dict(EVENTS["reminder"].example)
    )
    assert sms.body == "Mwolo Energy: Marie Kabila Ngalula, payez 1 250 000,00."


def test_the_template_page_lists_the_variables_and_shows_an_example(
    client, administrator, reminder_sms
):
    page = html.unescape(client.get(_template_url(reminder_sms)).content.decode())

    assert "{{ days_overdue }}" in page
    assert "jours depuis l'échéance" in page
    assert "1 250 000,00 CDF est impayée depuis 7 jours" in page
    assert "131 caractères sur 160 (GSM-7), 1 SMS" in page


def test_managers_read_templates_but_cannot_change_them(client, gombe, reminder_sms):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    before = reminder_sms.body

    page = client.get(_template_url(reminder_sms))
    client.post(_template_url(reminder_sms), {"subject": "", "body": "Payez."})

    assert page.status_code == 200
    assert 'name="body"' not in page.content.decode()
    reminder_sms.refresh_from_db()
    assert reminder_sms.body == before


def test_templates_cannot_be_added_or_deleted(client, administrator, reminder_sms):
    assert client.get(reverse("admin:notifications_messagetemplate_add")).status_code == 403
    delete = reverse("admin:notifications_messagetemplate_delete", args=[reminder_sms.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert MessageTemplate.objects.filter(pk=reminder_sms.pk).exists()


# --- The client's timeline ------------------------------------------------------------------


def _client_page(client, customer):
    return client.get(reverse("admin:crm_client_change", args=[customer.pk]))


def test_the_client_page_shows_every_message_sent_to_the_client(client, sms_client, gombe):
    NotificationFactory(
        client=sms_client, status=Notification.Status.SENT, body="Mwolo Energy: code 123"
    )
    NotificationFactory(
        client=sms_client,
        channel="email",
        recipient="m@example.cd",
        event="invoice_issued",
        subject="Votre facture FA-2026-000123 – Mwolo Energy",
        body="Bonjour",
        status=Notification.Status.GIVEN_UP,
    )
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    page = _client_page(client, sms_client).content.decode()

    assert "Messages envoyés" in page
    assert "Mwolo Energy: code 123" in page
    assert "Votre facture FA-2026-000123 – Mwolo Energy" in page
    assert "Abandonné" in page
    assert "Facture émise" in page


def test_the_client_page_shows_no_timeline_to_those_who_may_not_read_the_outbox(
    client, sms_client, gombe
):
    NotificationFactory(client=sms_client, body="Mwolo Energy: code 123")
    client.force_login(EmployeeFactory(role=Role.TECHNICIAN, agency=gombe))

    page = _client_page(client, sms_client).content.decode()

    assert "Messages envoyés" not in page
    assert "Mwolo Energy: code 123" not in page


def test_the_client_page_shows_the_latest_messages_and_links_to_the_rest(client, sms_client, gombe):
    NotificationFactory.create_batch(55, client=sms_client)
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))

    page = _client_page(client, sms_client).content.decode()

    assert f"?client__id__exact={sms_client.pk}" in page
    listing = client.get(reverse(OUTBOX), {"client__id__exact": sms_client.pk})
    assert listing.status_code == 200


# --- Query counts ---------------------------------------------------------------------------


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_outbox_and_the_timeline_do_not_grow_queries_with_rows(client, sms_client, gombe):
    client.force_login(EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe))
    pages = [
        reverse(OUTBOX),
        reverse("admin:notifications_messagetemplate_changelist"),
        reverse("admin:crm_client_change", args=[sms_client.pk]),
    ]
    NotificationFactory(client=sms_client)
    few = [_queries(client, url) for url in pages]
    for index in range(40):
        NotificationFactory(client=ClientFactory(agency=gombe) if index % 2 else sms_client)
    many = [_queries(client, url) for url in pages]

    assert many == few
    assert max(few) <= 30


def test_the_timeline_is_one_query_however_long(sms_client, gombe, django_assert_num_queries):
    NotificationFactory.create_batch(30, client=sms_client)
    manager = EmployeeFactory(role=Role.AGENCY_MANAGER, agency=gombe)
    manager.has_perm("x")  # load the permission cache outside the count

    with django_assert_num_queries(2):  # the manager's agencies, then the messages
        messages = list(client_messages(client=sms_client, user=manager))
        [(m.get_status_display(), m.summary) for m in messages]
    assert len(messages) == 30
