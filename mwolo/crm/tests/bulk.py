"""Large, valid data sets in a few queries, for benchmarks and query-count tests."""

import random

from mwolo.agencies.models import Agency
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.crm.models import Client, PartyKind, Site, SiteCategory
from mwolo.geo.models import Commune

LAST_NAMES = ("Mukendi", "Kabila", "Mbuyi", "Ilunga", "Kalala", "Nzuzi", "Kasongo", "Ngoy")
FIRST_NAMES = ("Patrick", "Grâce", "Fiston", "Chantal", "Blaise", "Divine", "Gloire", "Ruth")


def bulk_clients(*, count: int, agency_count: int) -> list[Agency]:
    """``count`` clients spread round-robin over ``agency_count`` Kinshasa agencies."""
    communes = list(
        Commune.objects.filter(territory__name="Kinshasa").select_related("territory__province")
    )[:agency_count]
    agencies = [
        AgencyFactory(code=f"KIN-{index:02d}", commune=commune)
        for index, commune in enumerate(communes)
    ]
    rng = random.Random(count)
    clients = []
    for number in range(1, count + 1):
        agency = agencies[number % len(agencies)]
        clients.append(
            Client(
                number=f"CL-{number:07d}",
                kind=PartyKind.PERSON,
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                phone=f"+24381{number:07d}",
                agency=agency,
                province=agency.province,
                territory=agency.territory,
                commune=agency.commune,
                address_line=f"{number % 200 + 1}, avenue Kasa-Vubu",
            )
        )
    Client.objects.bulk_create(clients, batch_size=2000)
    return agencies


def bulk_sites(*, agency: Agency, count: int) -> list[Site]:
    """One home per client of ``agency``, for the first ``count`` of them."""
    clients = list(Client.objects.filter(agency=agency).order_by("pk")[:count])
    sites = [
        Site(
            reference=f"ST-{client.number[3:]}",
            client=client,
            agency=agency,
            label="Domicile",
            category=SiteCategory.RESIDENTIAL,
            province=client.province,
            territory=client.territory,
            commune=client.commune,
            address_line=client.address_line,
        )
        for client in clients
    ]
    return Site.objects.bulk_create(sites, batch_size=2000)
