"""What a visitor does in the browser, shared by the browser test modules."""

from playwright.sync_api import Page

from mwolo.agencies.models import Agency
from mwolo.geo.tests.factories import commune


def fill_the_form(page: Page, agency: Agency, **values: str) -> None:
    """A person in Gombe; labels are translated text, so fields are found by their id."""
    gombe = commune("Gombe")
    fields = {
        "first_name": "Espérance",
        "last_name": "Mbuyi",
        "middle_name": "Kalonji",
        "phone": "+243 81 234 5678",
        "email": "esperance@example.cd",
        "address_line": "12, avenue du Commerce",
        "latitude": "-4,3075",
        "longitude": "15,3136",
        **values,
    }
    for name, value in fields.items():
        page.fill(f"#id_{name}", value)
    page.check("input[name=category][value=residential]")
    page.select_option("#id_province", value=str(gombe.territory.province.pk))
    page.select_option("#id_territory", value=str(gombe.territory.pk))
    page.select_option("#id_commune", value=str(gombe.pk))
    page.select_option("#id_agency", value=str(agency.pk))
