"""The geography every test uses is the real reference data (provinces and localities)."""

from mwolo.geo.models import Commune, Province, Territory


def province(code: str = "CD-KN") -> Province:
    return Province.objects.get(code=code)


def territory(name: str = "Kinshasa") -> Territory:
    return Territory.objects.select_related("province").get(name=name)


def commune(name: str = "Gombe", territory_name: str = "Kinshasa") -> Commune:
    return Commune.objects.select_related("territory__province").get(
        name=name, territory__name=territory_name
    )


def address(commune_name: str = "Gombe", territory_name: str = "Kinshasa") -> dict:
    """Consistent address fields for a model built by a factory."""
    place = commune(commune_name, territory_name)
    return {
        "province": place.territory.province,
        "territory": place.territory,
        "commune": place,
        "address_line": "12, avenue du Commerce",
    }
