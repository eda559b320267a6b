"""Template helpers of the public site."""

from django import template

from mwolo.agencies.models import Agency
from mwolo.agencies.selectors import OpeningDays, agency_opening_days

register = template.Library()


@register.filter
def opening_days(agency: Agency) -> list[OpeningDays]:
    """``{% for days in agency|opening_days %}``: the agency's week, equal days merged."""
    return agency_opening_days(agency)
