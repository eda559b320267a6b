import factory
from django.contrib.auth.models import Group

from mwolo.accounts.models import User
from mwolo.agencies.tests.factories import AgencyFactory
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Jean"
    last_name = "Mukendi"
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.cd")
    password = factory.django.Password("motdepasse-solide-2026")


class EmployeeFactory(UserFactory):
    """A staff member of ``agency`` with the role ``role=`` (agency manager by default).

    ``EmployeeFactory(role=Role.CASHIER, agency=gombe)``; ``role=None`` gives no role.
    """

    is_staff = True
    agency = factory.SubFactory(AgencyFactory)

    @classmethod
    def _create(cls, model_class, *args, role=Role.AGENCY_MANAGER, **kwargs):
        user = super()._create(model_class, *args, **kwargs)
        if role is not None:
            user.groups.set([Group.objects.get(name=ROLE_GROUP_NAMES[role])])
        return user


class AdministratorFactory(EmployeeFactory):
    agency = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs.setdefault("role", Role.ADMINISTRATOR)
        return super()._create(model_class, *args, **kwargs)


class PortalUserFactory(UserFactory):
    """A client's portal account (client role); link it with ``Client.user``."""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        user = super()._create(model_class, *args, **kwargs)
        user.groups.set([Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT])])
        return user
