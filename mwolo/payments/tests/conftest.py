"""Fixtures the payments tests share."""

import pytest
from django.contrib.auth.models import Group

from mwolo.accounts.tests.factories import UserFactory
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role
from mwolo.payments.tests.factories import site_with_invoices


@pytest.fixture
def owing():
    """A client owing one October invoice of 24 940 CDF, with their portal account:
    (client, invoice, portal user)."""
    site, (invoice,) = site_with_invoices(agency=AgencyFactory(code="KIN-GOM"))
    user = UserFactory()
    user.groups.add(Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT]))
    client = site.client
    client.user = user
    client.save()
    return client, invoice, user
