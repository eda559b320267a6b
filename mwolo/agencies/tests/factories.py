import factory

from mwolo.agencies.models import Agency
from mwolo.geo.tests.factories import commune


class AgencyFactory(factory.django.DjangoModelFactory):
    """An agency in Kinshasa/Gombe unless ``commune`` says otherwise."""

    class Meta:
        model = Agency
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"AG{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Agence {o.code}")
    commune = factory.LazyFunction(lambda: commune("Gombe"))
    territory = factory.LazyAttribute(lambda o: o.commune.territory)
    province = factory.LazyAttribute(lambda o: o.commune.territory.province)
    address_line = "1, boulevard du 30 Juin"
    phone = "+243815550000"
    email = factory.LazyAttribute(lambda o: f"{o.code.lower()}@mwolo.cd")
