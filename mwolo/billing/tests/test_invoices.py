"""Drafting and issuing a month's invoices: from readings to numbered invoices."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError

from mwolo.accounts.tests.factories import EmployeeFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.billing import services
from mwolo.billing.models import AccountEntry, Anomaly, BillingRun, Invoice, InvoiceLine
from mwolo.billing.tests.factories import OCTOBER, issued_numbers, local, metered_site, tariff
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import Role
from mwolo.crm.models import SiteCategory
from mwolo.geo.tests.factories import commune
from mwolo.metering import services as metering
from mwolo.metering.models import MeterReading
from mwolo.metering.tests.factories import MeterFactory

pytestmark = pytest.mark.django_db

D = Decimal
SEPTEMBER = dt.date(2026, 9, 1)
NOVEMBER = dt.date(2026, 11, 1)


def draft(site, period=OCTOBER):
    services.invoices_draft(period=period, site_ids=[site.pk])
    return Invoice.objects.get(site=site, period=period, status=Invoice.Status.DRAFT)


def lines_of(invoice):
    return [
        (line.kind, line.quantity, line.unit_price, line.amount)
        for line in InvoiceLine.objects.filter(invoice=invoice)
    ]


@pytest.fixture
def residential():
    # 2 500 CDF a month; the first 50 kWh at 100 CDF, the rest at 200 CDF; VAT 16 %.
    return tariff()


def test_a_month_of_readings_becomes_a_draft_priced_by_the_bands(residential):
    site = metered_site(
        readings=[(local("2026-09-30", "23:30"), "1100"), (local("2026-10-31", "22:00"), "1220")]
    )

    invoice = draft(site)

    assert invoice.consumption_kwh == D("120.000")
    assert not invoice.estimated
    assert invoice.anomalies == []
    assert (invoice.previous_reading_kwh, invoice.current_reading_kwh) == (D(1100), D(1220))
    assert lines_of(invoice) == [
        ("fixed", D("1.0000"), D("2500.0000"), D("2500.00")),
        ("energy", D("50.0000"), D("100.0000"), D("5000.00")),
        ("energy", D("70.0000"), D("200.0000"), D("14000.00")),
    ]
    assert invoice.subtotal == D("21500.00")
    assert invoice.vat_amount == D("3440.00")
    assert invoice.total == D("24940.00")
    assert (invoice.currency, invoice.tariff, invoice.client) == ("CDF", residential, site.client)
    assert invoice.number == ""
    assert not AccountEntry.objects.exists()


def test_issuing_numbers_the_invoices_without_gaps_and_books_them(residential):
    sites = [
        metered_site(
            readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), str(1000 + 10 * n))]
        )
        for n in range(1, 4)
    ]
    services.invoices_draft(period=OCTOBER, site_ids=[site.pk for site in sites])
    drafts = list(Invoice.objects.order_by("pk"))

    report = services.invoices_issue(invoice_ids=[d.pk for d in drafts], actor=None)

    year = clock.today("Africa/Kinshasa").year
    assert report.numbers == [f"FAC-{year}-00000{n}" for n in (1, 2, 3)]
    for invoice in Invoice.objects.order_by("pk"):
        assert invoice.status == Invoice.Status.ISSUED
        assert invoice.issue_date == clock.today("Africa/Kinshasa")
        assert invoice.due_date == invoice.issue_date + dt.timedelta(days=15)
        entry = AccountEntry.objects.get(invoice=invoice)
        assert (entry.client, entry.amount, entry.reference) == (
            invoice.client,
            invoice.total,
            invoice.number,
        )
    # Issuing again issues nothing twice.
    again = services.invoices_issue(invoice_ids=[d.pk for d in drafts], actor=None)
    assert again.issued == 0
    assert AccountEntry.objects.count() == 3


def test_drafting_again_never_makes_a_second_invoice(residential):
    site = metered_site(readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1040")])
    first = draft(site)
    metering.readings_record(
        meter_id=site.meters.get().pk,
        readings=[(local("2026-10-31", "23:00"), D("1045"))],
        source=MeterReading.Source.TECHNICIAN,
        actor=None,
    )

    refreshed = draft(site)

    assert Invoice.objects.count() == 1
    assert refreshed.pk != first.pk
    assert refreshed.consumption_kwh == D("45.000")
    services.invoices_issue(invoice_ids=[refreshed.pk], actor=None)
    report = services.invoices_draft(period=OCTOBER, site_ids=[site.pk])
    assert (report.drafted, report.kept) == (0, 1)
    assert Invoice.objects.get().status == Invoice.Status.ISSUED


def test_a_month_without_reading_is_estimated_from_the_meters_history(residential):
    # 30 kWh a day from August to the end of September, then nothing in October.
    site = metered_site(
        register="1000",
        readings=[(local("2026-08-31", "09:00"), "1900"), (local("2026-09-30", "09:00"), "2800")],
    )

    invoice = draft(site)

    assert invoice.estimated
    assert invoice.anomalies == [Anomaly.ESTIMATED]
    assert invoice.consumption_kwh == D("930.000")  # 31 days × 30 kWh
    assert invoice.current_reading_kwh is None
    assert invoice.previous_reading_kwh == D(2800)
    held = services.invoices_issue(invoice_ids=[invoice.pk], actor=None)
    assert (held.issued, held.held) == (0, 1)
    with pytest.raises(ApplicationError, match="besoin d’une vérification"):
        services.invoice_issue(invoice_id=invoice.pk, actor=None)

    manager = EmployeeFactory(role=Role.BILLING_AGENT, agency=site.agency)
    with pytest.raises(ValidationError):
        services.invoice_review(invoice_id=invoice.pk, actor=manager, note="  ")
    services.invoice_review(invoice_id=invoice.pk, actor=manager, note="Compteur inaccessible")
    issued = services.invoice_issue(invoice_id=invoice.pk, actor=manager)
    assert issued.status == Invoice.Status.ISSUED
    assert issued.issued_by == manager


def test_the_next_real_reading_pays_only_what_the_estimate_did_not(residential):
    site = metered_site(
        register="1000",
        readings=[(local("2026-08-31", "09:00"), "1900"), (local("2026-09-30", "09:00"), "2800")],
    )
    estimated = draft(site)
    services.invoice_review(
        invoice_id=estimated.pk,
        actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=site.agency),
        note="Estimation acceptée",
    )
    services.invoice_issue(invoice_id=estimated.pk, actor=None)
    # The technician reads 3 900 on 30 November: 1 100 kWh since 30 September.
    metering.readings_record(
        meter_id=site.meters.get().pk,
        readings=[(local("2026-11-30", "10:00"), D("3900"))],
        source=MeterReading.Source.TECHNICIAN,
        actor=None,
    )

    november = draft(site, NOVEMBER)

    assert not november.estimated
    assert november.estimates_deducted_kwh == D("930.000")
    assert november.consumption_kwh == D("170.000")
    assert november.anomalies == []


def test_an_estimate_larger_than_what_was_used_is_flagged(residential):
    site = metered_site(
        register="1000",
        readings=[(local("2026-08-31", "09:00"), "1900"), (local("2026-09-30", "09:00"), "2800")],
    )
    estimated = draft(site)
    services.invoice_review(
        invoice_id=estimated.pk,
        actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=site.agency),
        note="ok",
    )
    services.invoice_issue(invoice_id=estimated.pk, actor=None)
    metering.readings_record(
        meter_id=site.meters.get().pk,
        readings=[(local("2026-11-30"), D("3000"))],
        source=MeterReading.Source.TECHNICIAN,
        actor=None,
    )

    november = draft(site, NOVEMBER)

    assert november.consumption_kwh == 0
    assert Anomaly.OVER_ESTIMATED in november.anomalies


def test_a_meter_without_history_cannot_be_estimated(residential):
    site = metered_site(installed_at=local("2026-09-30", "10:00"))

    invoice = draft(site)

    assert set(invoice.anomalies) == {Anomaly.NO_HISTORY, Anomaly.ESTIMATED}
    assert invoice.consumption_kwh == 0


def test_unreviewed_suspicious_readings_hold_the_draft(residential):
    site = metered_site(
        readings=[
            (local("2026-09-30"), "1100"),
            (local("2026-10-15"), "1050"),  # lower than before: flagged
            (local("2026-10-31"), "1160"),
        ]
    )

    invoice = draft(site)

    assert invoice.anomalies == [Anomaly.SUSPICIOUS]
    assert invoice.consumption_kwh == D("60.000")
    assert services.invoices_issue(invoice_ids=[invoice.pk], actor=None).held == 1


def test_a_tariff_change_mid_month_prorates_the_charge_and_the_bands():
    tariff(code="RES-A", valid_to=dt.date(2026, 10, 15))
    tariff(
        code="RES-B",
        valid_from=dt.date(2026, 10, 16),
        bands=((D(50), D(120)), (None, D(240))),
        fixed=D(3100),
    )
    site = metered_site(readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1310")])

    invoice = draft(site)

    # 15 days of 31 under A, 16 under B; the 310 kWh split the same way (150.000 / 160.000).
    assert lines_of(invoice) == [
        ("fixed", D("0.4839"), D("2500.0000"), D("1209.75")),
        ("energy", D("24.1940"), D("100.0000"), D("2419.40")),  # A's first 50 kWh × 15/31
        ("energy", D("125.8060"), D("200.0000"), D("25161.20")),
        ("fixed", D("0.5161"), D("3100.0000"), D("1599.91")),
        ("energy", D("25.8060"), D("120.0000"), D("3096.72")),  # B's first 50 kWh × 16/31
        ("energy", D("134.1940"), D("240.0000"), D("32206.56")),
    ]
    assert invoice.subtotal == sum(line[3] for line in lines_of(invoice))
    assert invoice.total == invoice.subtotal + invoice.vat_amount


def test_a_small_consumer_pays_the_social_price():
    tariff(social_ceiling_kwh=D(30), social_price_per_kwh=D(60))
    small = metered_site(readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1025")])
    large = metered_site(readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1031")])

    assert lines_of(draft(small))[1:] == [("social", D("25.0000"), D("60.0000"), D("1500.00"))]
    assert lines_of(draft(large))[1:] == [("energy", D("31.0000"), D("100.0000"), D("3100.00"))]


def test_a_meter_installed_mid_month_pays_the_days_it_was_supplied(residential):
    site = metered_site(
        installed_at=local("2026-10-17", "10:00"),
        register="0",
        readings=[(local("2026-10-31"), "40")],
    )

    invoice = draft(site)

    assert lines_of(invoice)[0] == ("fixed", D("0.4839"), D("2500.0000"), D("1209.75"))
    # 15 days of 31: the first band holds 24.194 kWh
    assert [line[1] for line in lines_of(invoice)[1:]] == [D("24.1940"), D("15.8060")]


def test_a_replaced_meter_counts_both_meters(residential):
    site = metered_site(readings=[(local("2026-09-30"), "1000")])
    old = site.meters.get()
    new = MeterFactory(agency=site.agency)
    metering.meter_replace(
        old_meter_id=old.pk,
        new_meter_id=new.pk,
        old_register_kwh=D("1030"),
        new_register_kwh=D("5"),
        reason="Compteur défectueux",
        actor=None,
        at=local("2026-10-10"),
    )
    metering.readings_record(
        meter_id=new.pk,
        readings=[(local("2026-10-31"), D("25"))],
        source=MeterReading.Source.TECHNICIAN,
        actor=None,
    )

    invoice = draft(site)

    assert invoice.consumption_kwh == D("50.000")
    assert invoice.meter == new
    assert (invoice.previous_reading_kwh, invoice.current_reading_kwh) == (D(5), D(25))


def test_prepaid_sites_and_sites_without_meter_are_not_billed(residential):
    prepaid = metered_site(
        prepaid=True, readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1100")]
    )
    from mwolo.crm.tests.factories import SiteFactory

    bare = SiteFactory()

    report = services.invoices_draft(period=OCTOBER, site_ids=[prepaid.pk, bare.pk])

    assert report.drafted == 0
    assert not Invoice.objects.exists()


def test_a_category_without_tariff_gives_a_flagged_draft_that_cannot_be_accepted(residential):
    site = metered_site(
        category=SiteCategory.INDUSTRIAL,
        readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1100")],
    )

    invoice = draft(site)

    assert invoice.anomalies == [Anomaly.NO_TARIFF]
    assert invoice.total == 0
    assert not InvoiceLine.objects.exists()
    with pytest.raises(ValidationError, match="aucun tarif"):
        services.invoice_review(
            invoice_id=invoice.pk,
            actor=EmployeeFactory(role=Role.BILLING_AGENT, agency=site.agency),
            note="vu",
        )


@pytest.mark.parametrize(
    ("period", "message"),
    [(dt.date(2026, 10, 2), "premier"), (dt.date(2099, 1, 1), "pas terminé")],
)
def test_a_period_that_cannot_be_billed_is_refused_and_nothing_is_written(
    residential, period, message
):
    site = metered_site(readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1100")])

    with pytest.raises(ValidationError, match=message):
        services.invoices_draft(period=period, site_ids=[site.pk])
    with pytest.raises(ValidationError, match=message):
        services.billing_run_start(period=period, agency_id=None, actor=None)

    assert not Invoice.objects.exists()
    assert not BillingRun.objects.exists()


def test_the_current_month_cannot_be_billed_yet(residential):
    this_month = clock.today("Africa/Kinshasa").replace(day=1)
    with pytest.raises(ValidationError, match="pas terminé"):
        services.billing_run_start(period=this_month, agency_id=None, actor=None)


def test_a_run_drafts_and_issues_every_chunk_of_an_agency(residential):
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    ours = [
        metered_site(
            agency=gombe, readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1050")]
        )
        for _ in range(5)
    ]
    theirs = metered_site(
        agency=lubumbashi, readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1050")]
    )
    billing = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)

    run = services.billing_run_start(
        period=OCTOBER, agency_id=gombe.pk, actor=billing, chunk_size=2
    )
    assert len(run.chunks) == 3
    for index in range(3):
        services.billing_run_draft_chunk(run_id=run.pk, index=index)
    run.refresh_from_db()
    assert run.status == BillingRun.Status.DRAFTED
    for index in range(3):
        services.billing_run_issue_chunk(run_id=run.pk, index=index, actor=billing)

    run.refresh_from_db()
    assert run.status == BillingRun.Status.ISSUED
    assert set(Invoice.objects.values_list("site_id", flat=True)) == {s.pk for s in ours}
    assert not Invoice.objects.filter(site=theirs).exists()
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert [int(number[-6:]) for number in numbers] == [1, 2, 3, 4, 5]


def test_a_run_started_to_issue_issues_each_chunk_as_it_drafts_it(residential):
    gombe = AgencyFactory(code="KIN-GOM")
    read = [
        metered_site(
            agency=gombe, readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1050")]
        )
        for _ in range(4)
    ]
    unread = metered_site(agency=gombe, installed_at=local("2026-09-30", "10:00"))
    billing = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)

    run = services.billing_run_start(
        period=OCTOBER, agency_id=gombe.pk, actor=billing, issue=True, chunk_size=2
    )
    first = services.billing_run_draft_chunk(run_id=run.pk, index=0)

    # The first chunk is issued before the others are drafted.
    assert (first.drafted, first.issued, first.held) == (2, 2, 0)
    issued = Invoice.objects.filter(status=Invoice.Status.ISSUED)
    assert sorted(issued.values_list("number", flat=True)) == issued_numbers(2)
    assert set(issued.values_list("issued_by", flat=True)) == {billing.pk}
    assert AccountEntry.objects.count() == 2
    run.refresh_from_db()
    assert run.status == BillingRun.Status.DRAFTING
    for index in (1, 2):
        services.billing_run_draft_chunk(run_id=run.pk, index=index)

    run.refresh_from_db()
    assert run.status == BillingRun.Status.ISSUED
    assert run.issued_at is not None
    assert issued.count() == len(read)
    held = Invoice.objects.get(site=unread)
    assert held.status == Invoice.Status.DRAFT
    assert held.number == ""
    for invoice in issued:
        entry = AccountEntry.objects.get(invoice=invoice)
        assert (entry.reference, entry.amount) == (invoice.number, invoice.total)
        assert invoice.due_date == invoice.issue_date + dt.timedelta(days=15)
        assert lines_of(invoice)


def test_a_reviewed_draft_is_issued_when_the_run_is_started_again_to_issue(residential):
    gombe = AgencyFactory(code="KIN-GOM")
    unread = metered_site(agency=gombe, installed_at=local("2026-09-30", "10:00"))
    read = metered_site(
        agency=gombe, readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1050")]
    )
    billing = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)
    run = services.billing_run_start(period=OCTOBER, agency_id=gombe.pk, actor=billing)
    services.billing_run_draft_chunk(run_id=run.pk, index=0)
    flagged = Invoice.objects.get(site=unread)
    services.invoice_review(invoice_id=flagged.pk, actor=billing, note="Compteur neuf, vérifié.")

    run = services.billing_run_start(period=OCTOBER, agency_id=gombe.pk, actor=billing, issue=True)
    report = services.billing_run_draft_chunk(run_id=run.pk, index=0)

    assert (report.drafted, report.kept, report.issued) == (1, 1, 2)
    assert Invoice.objects.get(site=unread).pk == flagged.pk
    assert set(Invoice.objects.values_list("site_id", "status")) == {
        (unread.pk, Invoice.Status.ISSUED),
        (read.pk, Invoice.Status.ISSUED),
    }
    assert sorted(Invoice.objects.values_list("number", flat=True)) == issued_numbers(2)


def test_starting_a_run_to_issue_needs_the_right_to_issue(residential):
    gombe = AgencyFactory(code="KIN-GOM")
    drafter = EmployeeFactory(role=None, agency=gombe)
    drafter.user_permissions.add(
        Permission.objects.get(codename="add_billingrun", content_type__app_label="billing")
    )

    with pytest.raises(PermissionDenied):
        services.billing_run_start(period=OCTOBER, agency_id=gombe.pk, actor=drafter, issue=True)
    assert not BillingRun.objects.exists()
    services.billing_run_start(period=OCTOBER, agency_id=gombe.pk, actor=drafter)
    assert BillingRun.objects.get().issue_when_drafted is False


def test_an_employee_bills_only_their_agency(residential):
    gombe = AgencyFactory(code="KIN-GOM")
    lubumbashi = AgencyFactory(code="LSH-CTR", commune=commune("Kampemba", "Lubumbashi"))
    billing = EmployeeFactory(role=Role.BILLING_AGENT, agency=gombe)

    with pytest.raises(ValidationError, match="agence"):
        services.billing_run_start(period=OCTOBER, agency_id=lubumbashi.pk, actor=billing)
    with pytest.raises(ValidationError, match="agence"):
        services.billing_run_start(period=OCTOBER, agency_id=None, actor=billing)
    assert not BillingRun.objects.exists()


def test_drafting_a_chunk_again_keeps_a_reviewed_draft_and_redrafts_the_others(residential):
    reviewed = metered_site(installed_at=local("2026-09-30", "10:00"))
    other = metered_site(readings=[(local("2026-09-30"), "1000"), (local("2026-10-31"), "1040")])
    billing = EmployeeFactory(role=Role.BILLING_AGENT, agency=reviewed.agency)
    services.invoices_draft(period=OCTOBER, site_ids=[reviewed.pk, other.pk])
    flagged = Invoice.objects.get(site=reviewed)
    services.invoice_review(invoice_id=flagged.pk, actor=billing, note="Compteur neuf, vérifié.")

    report = services.invoices_draft(period=OCTOBER, site_ids=[reviewed.pk, other.pk])

    assert (report.drafted, report.kept) == (1, 1)
    assert Invoice.objects.get(site=reviewed).pk == flagged.pk
    assert lines_of(Invoice.objects.get(site=other))
