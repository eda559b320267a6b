"""The default texts of every event, in French and English, by email and by SMS.

Staff edit them in the admin afterwards; this migration only fills in what is missing, so
running it again (or after a flush, see ``load_default_templates``) never overwrites an
edited text. SMS texts stay within one SMS (160 GSM-7 characters) with realistic values:
no ê, â, ô, î, ç or typographic quotes in them, which would switch the SMS to UCS-2 and
its 70-character limit.
"""

from django.db import migrations

SIGNATURE_FR = "L'équipe Mwolo Energy\n{{ agency_name }} · {{ agency_phone }}"
SIGNATURE_EN = "The Mwolo Energy team\n{{ agency_name }} · {{ agency_phone }}"

# (event, language) → (email subject, email body, SMS body)
DEFAULT_TEMPLATES = {
    ("invoice_issued", "fr"): (
        "Votre facture {{ invoice_number }} – Mwolo Energy",
        "Bonjour {{ client_name }},\n\n"
        "Votre facture {{ invoice_number }} pour la période du {{ period_start }} au "
        "{{ period_end }} est jointe à ce message.\n\n"
        "Montant à payer : {{ amount_due }} {{ currency }}\n"
        "À payer avant le : {{ due_date }}\n"
        "Référence de paiement : {{ payment_reference }}\n\n"
        "Vous pouvez payer par mobile money en indiquant cette référence, ou à la caisse "
        "de votre agence.\n\n"
        "Numéro client : {{ client_number }}\n\n" + SIGNATURE_FR,
        "Mwolo Energy: facture {{ invoice_number }} de {{ amount_due }} {{ currency }} à "
        "payer avant le {{ due_date }}. Réf. de paiement: {{ payment_reference }}",
    ),
    ("invoice_issued", "en"): (
        "Your invoice {{ invoice_number }} – Mwolo Energy",
        "Dear {{ client_name }},\n\n"
        "Your invoice {{ invoice_number }} for {{ period_start }} to {{ period_end }} is "
        "attached to this message.\n\n"
        "Amount due: {{ amount_due }} {{ currency }}\n"
        "Due by: {{ due_date }}\n"
        "Payment reference: {{ payment_reference }}\n\n"
        "You can pay by mobile money quoting this reference, or at your agency's cash "
        "desk.\n\n"
        "Client number: {{ client_number }}\n\n" + SIGNATURE_EN,
        "Mwolo Energy: invoice {{ invoice_number }} for {{ amount_due }} {{ currency }} is "
        "due by {{ due_date }}. Payment reference: {{ payment_reference }}",
    ),
    ("reminder", "fr"): (
        "Rappel : facture {{ invoice_number }} impayée",
        "Bonjour {{ client_name }},\n\n"
        "Sauf erreur de notre part, votre facture {{ invoice_number }} de "
        "{{ amount_due }} {{ currency }}, échue le {{ due_date }}, n'est pas encore payée "
        "({{ days_overdue }} jours de retard).\n\n"
        "Merci de la régler dès que possible pour éviter une suspension de la fourniture "
        "d'électricité. Si vous avez déjà payé, ne tenez pas compte de ce message.\n\n"
        "Numéro client : {{ client_number }}\n\n" + SIGNATURE_FR,
        "Mwolo Energy: rappel. La facture {{ invoice_number }} de {{ amount_due }} "
        "{{ currency }} est impayée depuis {{ days_overdue }} jours. Payez vite pour éviter "
        "une coupure.",
    ),
    ("reminder", "en"): (
        "Reminder: invoice {{ invoice_number }} is unpaid",
        "Dear {{ client_name }},\n\n"
        "Our records show that your invoice {{ invoice_number }} for {{ amount_due }} "
        "{{ currency }}, due on {{ due_date }}, is still unpaid ({{ days_overdue }} days "
        "late).\n\n"
        "Please pay it as soon as possible to avoid your electricity supply being "
        "suspended. If you have already paid, please ignore this message.\n\n"
        "Client number: {{ client_number }}\n\n" + SIGNATURE_EN,
        "Mwolo Energy: reminder. Invoice {{ invoice_number }} for {{ amount_due }} "
        "{{ currency }} is {{ days_overdue }} days overdue. Please pay to avoid a "
        "disconnection.",
    ),
    ("final_notice", "fr"): (
        "Dernier avis avant coupure – facture {{ invoice_number }}",
        "Bonjour {{ client_name }},\n\n"
        "Malgré nos rappels, votre facture {{ invoice_number }} de {{ amount_due }} "
        "{{ currency }} reste impayée.\n\n"
        "Sans paiement avant le {{ disconnection_date }}, la fourniture d'électricité de "
        "votre site sera suspendue. Elle sera rétablie dès réception du paiement.\n\n"
        "Pour convenir d'un échéancier, contactez votre agence.\n\n"
        "Numéro client : {{ client_number }}\n\n" + SIGNATURE_FR,
        "Mwolo Energy: DERNIER AVIS. Sans paiement de {{ amount_due }} {{ currency }} "
        "(facture {{ invoice_number }}) avant le {{ disconnection_date }}, le courant sera "
        "coupé.",
    ),
    ("final_notice", "en"): (
        "Final notice before disconnection – invoice {{ invoice_number }}",
        "Dear {{ client_name }},\n\n"
        "Despite our reminders, your invoice {{ invoice_number }} for {{ amount_due }} "
        "{{ currency }} remains unpaid.\n\n"
        "Unless it is paid by {{ disconnection_date }}, the electricity supply to your "
        "site will be suspended. It will be restored as soon as payment is received.\n\n"
        "To agree on a payment plan, please contact your agency.\n\n"
        "Client number: {{ client_number }}\n\n" + SIGNATURE_EN,
        "Mwolo Energy: FINAL NOTICE. Unless {{ amount_due }} {{ currency }} (invoice "
        "{{ invoice_number }}) is paid by {{ disconnection_date }}, your power will be cut.",
    ),
    ("disconnection", "fr"): (
        "Fourniture suspendue – site {{ site_reference }}",
        "Bonjour {{ client_name }},\n\n"
        "Faute de paiement, la fourniture d'électricité de votre site {{ site_reference }} "
        "a été suspendue. Montant dû : {{ amount_due }} {{ currency }}.\n\n"
        "Le courant sera rétabli automatiquement dès réception de votre paiement.\n\n"
        "Numéro client : {{ client_number }}\n\n" + SIGNATURE_FR,
        "Mwolo Energy: le courant du site {{ site_reference }} est coupé pour un impayé "
        "de {{ amount_due }} {{ currency }}. Il sera rétabli dès le paiement. "
        "Info: {{ agency_phone }}",
    ),
    ("disconnection", "en"): (
        "Supply suspended – site {{ site_reference }}",
        "Dear {{ client_name }},\n\n"
        "As a payment is overdue, the electricity supply to your site {{ site_reference }} "
        "has been suspended. Amount due: {{ amount_due }} {{ currency }}.\n\n"
        "Power will be restored automatically as soon as your payment is received.\n\n"
        "Client number: {{ client_number }}\n\n" + SIGNATURE_EN,
        "Mwolo Energy: power to site {{ site_reference }} is cut for an unpaid "
        "{{ amount_due }} {{ currency }}. It is restored on payment. "
        "Info: {{ agency_phone }}",
    ),
    ("payment_receipt", "fr"): (
        "Paiement enregistré – reçu {{ receipt_number }}",
        "Bonjour {{ client_name }},\n\n"
        "Nous avons bien enregistré votre paiement, merci.\n\n"
        "Montant : {{ amount }} {{ currency }}\n"
        "Date : {{ paid_at }}\n"
        "Moyen de paiement : {{ method }}\n"
        "Reçu n° : {{ receipt_number }}\n"
        "Reste à payer : {{ balance_due }} {{ currency }}\n\n"
        "Numéro client : {{ client_number }}\n\n" + SIGNATURE_FR,
        "Mwolo Energy: paiement de {{ amount }} {{ currency }} enregistré le "
        "{{ paid_at }} ({{ method }}), réf. {{ receipt_number }}. Reste à payer: "
        "{{ balance_due }} {{ currency }}. Merci!",
    ),
    ("payment_receipt", "en"): (
        "Payment received – receipt {{ receipt_number }}",
        "Dear {{ client_name }},\n\n"
        "We have received your payment, thank you.\n\n"
        "Amount: {{ amount }} {{ currency }}\n"
        "Date: {{ paid_at }}\n"
        "Paid by: {{ method }}\n"
        "Receipt number: {{ receipt_number }}\n"
        "Balance due: {{ balance_due }} {{ currency }}\n\n"
        "Client number: {{ client_number }}\n\n" + SIGNATURE_EN,
        "Mwolo Energy: payment of {{ amount }} {{ currency }} received on {{ paid_at }} "
        "({{ method }}), ref. {{ receipt_number }}. Balance due: {{ balance_due }} "
        "{{ currency }}. Thank you!",
    ),
    ("reconnection", "fr"): (
        "Fourniture rétablie – site {{ site_reference }}",
        "Bonjour {{ client_name }},\n\n"
        "Merci pour votre paiement. La fourniture d'électricité de votre site "
        "{{ site_reference }} est rétablie.\n\n"
        "Si le courant n'est pas revenu d'ici une heure, appelez votre agence au "
        "{{ agency_phone }}.\n\n"
        "Numéro client : {{ client_number }}\n\n" + SIGNATURE_FR,
        "Mwolo Energy: merci pour votre paiement. Le courant du site {{ site_reference }} "
        "est rétabli. Un souci? Appelez le {{ agency_phone }}",
    ),
    ("reconnection", "en"): (
        "Supply restored – site {{ site_reference }}",
        "Dear {{ client_name }},\n\n"
        "Thank you for your payment. The electricity supply to your site "
        "{{ site_reference }} has been restored.\n\n"
        "If power is not back within an hour, please call your agency on "
        "{{ agency_phone }}.\n\n"
        "Client number: {{ client_number }}\n\n" + SIGNATURE_EN,
        "Mwolo Energy: thank you for your payment. Power to site {{ site_reference }} is "
        "restored. Any problem? Call {{ agency_phone }}",
    ),
    ("prepaid_token", "fr"): (
        "Votre code de recharge pour le compteur {{ meter_serial }}",
        "Bonjour {{ client_name }},\n\n"
        "Voici votre code de recharge :\n\n"
        "    {{ token }}\n\n"
        "Compteur : {{ meter_serial }}\n"
        "Énergie : {{ energy_kwh }} kWh\n"
        "Montant payé : {{ amount }} {{ currency }}\n\n"
        "Tapez ce code sur le clavier de votre compteur, puis validez.\n\n" + SIGNATURE_FR,
        "Mwolo Energy: code {{ token }} pour le compteur {{ meter_serial }}: "
        "{{ energy_kwh }} kWh ({{ amount }} {{ currency }}). Tapez ce code sur le compteur.",
    ),
    ("prepaid_token", "en"): (
        "Your top-up code for meter {{ meter_serial }}",
        "Dear {{ client_name }},\n\n"
        "Here is your top-up code:\n\n"
        "    {{ token }}\n\n"
        "Meter: {{ meter_serial }}\n"
        "Energy: {{ energy_kwh }} kWh\n"
        "Amount paid: {{ amount }} {{ currency }}\n\n"
        "Type this code on your meter's keypad, then confirm.\n\n" + SIGNATURE_EN,
        "Mwolo Energy: code {{ token }} for meter {{ meter_serial }}: {{ energy_kwh }} kWh "
        "({{ amount }} {{ currency }}). Type this code on your meter.",
    ),
    ("ticket_update", "fr"): (
        "Votre demande {{ ticket_number }} : {{ status }}",
        "Bonjour {{ client_name }},\n\n"
        "Votre demande {{ ticket_number }} ({{ subject }}) a un nouveau statut : "
        "{{ status }}.\n"
        "{% if message %}\n{{ message }}\n{% endif %}\n"
        "Pour répondre, contactez votre agence en citant le numéro de la demande.\n\n"
        + SIGNATURE_FR,
        "Mwolo Energy: votre demande {{ ticket_number }} a un nouveau statut: "
        "{{ status }}.{% if message %} {{ message }}{% endif %}",
    ),
    ("ticket_update", "en"): (
        "Your request {{ ticket_number }}: {{ status }}",
        "Dear {{ client_name }},\n\n"
        "Your request {{ ticket_number }} ({{ subject }}) has a new status: {{ status }}.\n"
        "{% if message %}\n{{ message }}\n{% endif %}\n"
        "To reply, please contact your agency quoting the request number.\n\n"
        + SIGNATURE_EN,
        "Mwolo Energy: your request {{ ticket_number }} has a new status: "
        "{{ status }}.{% if message %} {{ message }}{% endif %}",
    ),
}


def load_default_templates(apps, schema_editor=None):
    """Create the default templates that are missing; edited ones are left as they are."""
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for (event, language), (subject, email_body, sms_body) in DEFAULT_TEMPLATES.items():
        MessageTemplate.objects.get_or_create(
            event=event,
            channel="email",
            language=language,
            defaults={"subject": subject, "body": email_body},
        )
        MessageTemplate.objects.get_or_create(
            event=event, channel="sms", language=language, defaults={"body": sms_body}
        )


def remove_default_templates(apps, schema_editor):
    apps.get_model("notifications", "MessageTemplate").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [migrations.RunPython(load_default_templates, remove_default_templates)]
