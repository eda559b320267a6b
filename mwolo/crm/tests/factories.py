import factory

from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.crm.models import Client, ConnectionRequest, PartyKind, Site, SiteCategory
from mwolo.geo.tests.factories import commune


class _AddressFactory(factory.django.DjangoModelFactory):
    """Address fields that agree down the chain: by default the agency's commune."""

    class Meta:
        abstract = True

    agency = factory.SubFactory(AgencyFactory)
    commune = factory.LazyAttribute(lambda o: o.agency.commune or commune("Gombe"))
    territory = factory.LazyAttribute(lambda o: o.commune.territory)
    province = factory.LazyAttribute(lambda o: o.commune.territory.province)
    address_line = factory.Sequence(lambda n: f"{n + 1}, avenue Kasa-Vubu")


class ClientFactory(_AddressFactory):
    class Meta:
        model = Client

    number = factory.Sequence(lambda n: f"CL-T{n:06d}")
    kind = PartyKind.PERSON
    first_name = "Marie"
    last_name = "Kabila"
    middle_name = "Ngalula"
    phone = factory.Sequence(lambda n: f"+24381{n % 10_000_000:07d}")


class SiteFactory(_AddressFactory):
    class Meta:
        model = Site

    reference = factory.Sequence(lambda n: f"ST-T{n:06d}")
    client = factory.SubFactory(ClientFactory, agency=factory.SelfAttribute("..agency"))
    category = SiteCategory.RESIDENTIAL
    label = "Domicile"


class ConnectionRequestFactory(_AddressFactory):
    class Meta:
        model = ConnectionRequest

    reference = factory.Sequence(lambda n: f"DR-T-{n:06d}")
    kind = PartyKind.PERSON
    first_name = "Patrick"
    last_name = "Lumumba"
    phone = factory.Sequence(lambda n: f"+24399{n % 10_000_000:07d}")
    category = SiteCategory.RESIDENTIAL
