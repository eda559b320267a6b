"""The demo data set, created through the platform's own services.

``demo_seed`` is what ``manage.py seed_demo`` (and so every ``make run``) runs.

Deterministic: every record's values come from a ``random.Random`` seeded with the
record's own key (``client:0042``), so the same demo appears on every machine, and
``--clients 500`` adds 200 clients to the 300 of ``--clients 300`` without changing them.

Idempotent: a second run finds each record and creates only what is missing. Every record
the seed creates is listed in the ``DemoRecord`` table under its key (``agency:KIN-GOM``,
``user:cashier.gombe``, ``client:0042``, ``site:0042:1``, ``request:03``): clients, sites
and requests are numbered by the platform's sequences, so only this table can say which
demo record a row is. An agency or account missing from it is looked up by its fixed code
or username (``data.py``), and one found that way is used as it is. A record found is never
changed and nothing is ever deleted, so staff may edit or extend the demo; a demo record
deleted by hand comes back on the next run.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils.translation import gettext as _

from mwolo.accounts.models import User
from mwolo.accounts.services import employee_create, roles_sync
from mwolo.agencies.models import Agency, OpeningHours
from mwolo.billing import services as billing
from mwolo.billing.models import ExchangeRate, Invoice, Tariff
from mwolo.billing.services import tariff_save
from mwolo.core import clock
from mwolo.core.exceptions import ApplicationError
from mwolo.core.permissions import ROLE_GROUP_NAMES, Role, can_act_for_agency
from mwolo.crm import services as crm
from mwolo.crm.models import Channel, Client, ConnectionRequest, PartyKind, Site, SiteCategory
from mwolo.geo.models import Commune, Province
from mwolo.geo.services import BUNDLED_LOCALITIES, localities_import
from mwolo.headend.protocol import Reading, Telemetry
from mwolo.metering import services as metering
from mwolo.metering.models import Meter, PaymentMode
from sandbox.meters import TOKEN_START_COUNT, MeterSpec

from . import data
from .models import DemoRecord

T = TypeVar("T")
M = TypeVar("M", bound=models.Model)

ADMIN_USERNAME = "admin"
# Username prefixes: <prefix>.<agency slug>, e.g. cashier.gombe.
ROLE_PREFIXES: dict[Role, str] = {
    Role.AGENCY_MANAGER: "manager",
    Role.BILLING_AGENT: "billing",
    Role.CASHIER: "cashier",
    Role.TECHNICIAN: "technician",
    Role.SUPPORT_AGENT: "support",
    Role.HR_OFFICER: "hr",
}
COMPANY_SHARE = 0.15
# Every demo site has a meter of the simulator (make run starts it): SIM-000001, … in the
# order of the sites' keys. Three in ten are prepaid; each has two months of daily readings.
METER_SERIAL = "SIM-{:06d}"
PREPAID_SHARE = 0.3
METER_HISTORY_DAYS = 60
_JITTER = 600  # in 1/100,000 degree: records lie within about 650 m of their area's centre
_STEP = Decimal("0.00001")
AGENCIES_BY_CODE = {agency.code: agency for agency in data.AGENCIES}


# --- What the demo contains (pure functions of the keys: no database) ---------------------


@dataclass(frozen=True, kw_only=True)
class SiteSpec:
    key: str
    category: str
    label: str
    commune: str
    address_line: str
    latitude: Decimal
    longitude: Decimal


@dataclass(frozen=True, kw_only=True)
class ClientSpec:
    key: str
    agency_code: str
    kind: str
    first_name: str = ""
    last_name: str = ""
    middle_name: str = ""
    company_name: str = ""
    rccm: str = ""
    phone: str
    phone_alt: str = ""
    email: str = ""
    preferred_language: str = "fr"
    preferred_channel: str = Channel.SMS
    commune: str
    address_line: str
    sites: tuple[SiteSpec, ...]


@dataclass(frozen=True, kw_only=True)
class StaffSpec:
    username: str
    role: Role
    agency_code: str | None
    first_name: str
    last_name: str
    email: str
    phone: str


@dataclass(frozen=True, kw_only=True)
class RequestSpec:
    key: str
    request: data.ConnectionRequestData
    phone: str
    email: str
    address_line: str
    latitude: Decimal
    longitude: Decimal


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join([data.RANDOM_SEED, *map(str, parts)]))  # noqa: S311 - not secret


def _register(spec: MeterSpec, at: dt.datetime) -> Decimal:
    """What the simulated meter's register showed at ``at``."""
    return spec.register_at(at.timestamp()).quantize(Decimal("0.001"))


def _pick(rng: random.Random, items: Sequence[T], weights: Iterable[int]) -> T:
    return rng.choices(items, weights=list(weights))[0]


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")


def _mobile(rng: random.Random) -> str:
    prefix = _pick(
        rng, [p for p, _share in data.MOBILE_PREFIXES], (s for _p, s in data.MOBILE_PREFIXES)
    )
    return f"+243{prefix}{rng.randrange(10**7):07d}"


def _near(rng: random.Random, area: data.Area) -> tuple[Decimal, Decimal]:
    return (
        Decimal(area.latitude) + rng.randint(-_JITTER, _JITTER) * _STEP,
        Decimal(area.longitude) + rng.randint(-_JITTER, _JITTER) * _STEP,
    )


def _last_names(agency: data.AgencyData) -> tuple[str, ...]:
    return data.REGIONAL_LAST_NAMES[agency.names]


def _first_names(agency: data.AgencyData) -> tuple[str, ...]:
    if agency.names in {"nord_kivu", "sud_kivu", "katanga"}:
        return data.FIRST_NAMES + data.EASTERN_FIRST_NAMES
    return data.FIRST_NAMES


def _street_address(rng: random.Random, agency: data.AgencyData) -> str:
    return f"{rng.randint(1, 180)}, {rng.choice(agency.streets)}"


def _site_spec(
    rng: random.Random, *, key: str, agency: data.AgencyData, area: data.Area, **values: str
) -> SiteSpec:
    latitude, longitude = _near(rng, area)
    values.setdefault("address_line", _street_address(rng, agency))
    return SiteSpec(key=key, commune=area.commune, latitude=latitude, longitude=longitude, **values)


def _company_values(
    rng: random.Random, agency: data.AgencyData
) -> tuple[dict[str, str], data.CompanyKind]:
    kinds = [k for k in data.COMPANY_KINDS if agency.mining_region or not k.mining_region_only]
    kind = _pick(rng, kinds, (k.weight for k in kinds))
    name = kind.pattern.format(
        name=rng.choice(data.BUSINESS_NAMES),
        family=rng.choice(_last_names(agency)),
        saint=rng.choice(data.SAINTS),
    )
    rccm = ""
    if kind.registered:
        year, number = rng.randint(8, 25), rng.randint(1, 99999)
        rccm = f"CD/{agency.rccm_registry}/RCCM/{year:02d}-{kind.rccm_kind}-{number:05d}"
    english = kind.english_speaking and rng.random() < 0.6
    values = {
        "kind": PartyKind.COMPANY,
        "company_name": name,
        "rccm": rccm,
        "email": f"{_slug(name)}@{data.CLIENT_EMAIL_DOMAIN}" if rng.random() < 0.6 else "",
        "preferred_language": "en" if english else "fr",
    }
    return values, kind


def _person_values(rng: random.Random, agency: data.AgencyData) -> dict[str, str]:
    first_name = rng.choice(_first_names(agency))
    last_name, postnom = rng.sample(_last_names(agency), 2)
    email = ""
    if rng.random() < 0.3:
        email = f"{_slug(first_name)}.{_slug(last_name)}@{data.CLIENT_EMAIL_DOMAIN}"
    return {
        "kind": PartyKind.PERSON,
        "first_name": first_name,
        "last_name": last_name,
        "middle_name": postnom if rng.random() < 0.75 else "",
        "email": email,
        "preferred_language": "en" if rng.random() < 0.05 else "fr",
    }


def client_spec(*, index: int) -> ClientSpec:
    """The demo client number ``index`` (1-based), the same on every run and machine."""
    key = f"client:{index:04d}"
    rng = _rng(key)
    agency = _pick(rng, data.AGENCIES, (a.client_weight for a in data.AGENCIES))
    area = _pick(rng, agency.areas, (a.weight for a in agency.areas))
    address_line = _street_address(rng, agency)
    sites = []
    if rng.random() < COMPANY_SHARE:
        values, kind = _company_values(rng, agency)
        categories_labels = [(kind.category, kind.site_label)]
        if rng.random() < 0.2:
            categories_labels.append((kind.category, f"{kind.site_label} (succursale)"))
    else:
        values = _person_values(rng, agency)
        categories_labels = [(SiteCategory.RESIDENTIAL, rng.choice(data.HOME_LABELS))]
        if rng.random() < 0.25:
            categories_labels.append(
                (SiteCategory.COMMERCIAL, rng.choice(data.SMALL_BUSINESS_LABELS))
                if rng.random() < 0.6
                else (SiteCategory.RESIDENTIAL, rng.choice(data.SECOND_HOME_LABELS))
            )
    for position, (category, label) in enumerate(categories_labels, start=1):
        # The first site is at the client's address; a second one anywhere the agency serves.
        site_area = (
            area if position == 1 else _pick(rng, agency.areas, (a.weight for a in agency.areas))
        )
        extra = {"address_line": address_line} if position == 1 else {}
        sites.append(
            _site_spec(
                rng,
                key=f"site:{index:04d}:{position}",
                agency=agency,
                area=site_area,
                category=category,
                label=label,
                **extra,
            )
        )
    if values["email"] and rng.random() < 0.4:
        values["preferred_channel"] = Channel.EMAIL
    return ClientSpec(
        key=key,
        agency_code=agency.code,
        phone=_mobile(rng),
        phone_alt=_mobile(rng) if rng.random() < 0.15 else "",
        commune=area.commune,
        address_line=address_line,
        sites=tuple(sites),
        **values,
    )


def client_specs(*, count: int) -> list[ClientSpec]:
    return [client_spec(index=index) for index in range(1, count + 1)]


def portal_client_spec() -> ClientSpec:
    """The client behind the portal account ``client.demo`` (fixed, not random)."""
    values = data.PORTAL_CLIENT
    agency = AGENCIES_BY_CODE[values["agency_code"]]
    home = SiteSpec(
        key="site:portal:1",
        category=SiteCategory.RESIDENTIAL,
        label="Domicile",
        commune=values["commune"],
        address_line=values["address_line"],
        latitude=Decimal(values["latitude"]),
        longitude=Decimal(values["longitude"]),
    )
    return ClientSpec(
        key="client:portal",
        agency_code=agency.code,
        kind=PartyKind.PERSON,
        first_name=values["first_name"],
        last_name=values["last_name"],
        middle_name=values["middle_name"],
        phone=values["phone"],
        email=values["email"],
        preferred_channel=Channel.EMAIL,
        commune=values["commune"],
        address_line=values["address_line"],
        sites=(home,),
    )


def staff_specs() -> list[StaffSpec]:
    """The administrator, then every role of every agency (HR officers at the hubs only)."""
    wanted: list[tuple[str, Role, data.AgencyData | None]] = [
        (ADMIN_USERNAME, Role.ADMINISTRATOR, None)
    ]
    for agency in data.AGENCIES:
        for role, prefix in ROLE_PREFIXES.items():
            if role is Role.HR_OFFICER and not agency.has_hr_officer:
                continue
            wanted.append((f"{prefix}.{agency.slug}", role, agency))
    specs, emails = [], Counter[str]()
    for username, role, workplace in wanted:
        rng = _rng("user", username)
        home = workplace or AGENCIES_BY_CODE["KIN-GOM"]
        first_name = rng.choice(_first_names(home))
        last_name = rng.choice(_last_names(home))
        mailbox = f"{_slug(first_name)}.{_slug(last_name)}"
        emails[mailbox] += 1
        if emails[mailbox] > 1:  # two namesakes among the staff: the second gets a digit
            mailbox += str(emails[mailbox])
        specs.append(
            StaffSpec(
                username=username,
                role=role,
                agency_code=workplace.code if workplace else None,
                first_name=first_name,
                last_name=last_name,
                email=f"{mailbox}@{data.STAFF_EMAIL_DOMAIN}",
                phone=_mobile(rng),
            )
        )
    return specs


def request_specs() -> list[RequestSpec]:
    specs = []
    for index, request in enumerate(data.CONNECTION_REQUESTS, start=1):
        key = f"request:{index:02d}"
        rng = _rng(key)
        agency = AGENCIES_BY_CODE[request.agency_code]
        area = next(a for a in agency.areas if a.commune == request.commune)
        latitude, longitude = _near(rng, area)
        email = ""
        if rng.random() < 0.5:
            name = request.company_name or f"{request.first_name} {request.last_name}"
            email = f"{_slug(name).replace('-', '.')}@{data.CLIENT_EMAIL_DOMAIN}"
        specs.append(
            RequestSpec(
                key=key,
                request=request,
                phone=_mobile(rng),
                email=email,
                address_line=f"{rng.randint(1, 180)}, {request.street}",
                latitude=latitude,
                longitude=longitude,
            )
        )
    return specs


# --- Writing it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    agency: str
    # Found under its username but not made by the demo: its own password and roles stay.
    preexisting: bool = False


@dataclass
class SeedSummary:
    """Demo rows present after the run (``present``) and those this run created."""

    present: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    accounts: list[DemoAccount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, kind: str) -> None:
        self.present[kind] += 1

    def add(self, kind: str) -> None:
        self.present[kind] += 1
        self.created[kind] += 1


def _existing_ids(model: type[models.Model], ids: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(ids), 500):  # SQLite limits the parameters of one query
        chunk = ids[start : start + 500]
        found.update(model._default_manager.filter(pk__in=chunk).values_list("pk", flat=True))
    return found


class _Ledger:
    """The ``DemoRecord`` rows, read once: which key was created as which row."""

    def __init__(self) -> None:
        self._records = {record.key: record for record in DemoRecord.objects.all()}
        self._alive: dict[int, set[int]] = {}
        self._new: list[DemoRecord] = []

    def object_id(self, key: str, model: type[models.Model]) -> int | None:
        """The row made for ``key`` if it still exists (all rows of a model checked at once)."""
        record = self._records.get(key)
        content_type = ContentType.objects.get_for_model(model)
        if record is None or record.content_type_id != content_type.pk:
            return None
        if content_type.pk not in self._alive:
            ids = [
                r.object_id for r in self._records.values() if r.content_type_id == content_type.pk
            ]
            self._alive[content_type.pk] = _existing_ids(model, ids)
        return record.object_id if record.object_id in self._alive[content_type.pk] else None

    def remember(self, key: str, row: models.Model) -> None:
        content_type = ContentType.objects.get_for_model(row)
        record = self._records.get(key)
        if record is None:
            record = DemoRecord(key=key, content_type=content_type, object_id=row.pk)
            self._new.append(record)
            self._records[key] = record
        else:  # its row was deleted by hand and has just been made again
            record.content_type, record.object_id = content_type, row.pk
            record.save(update_fields=["content_type", "object_id"])
        self._alive.get(content_type.pk, set()).add(row.pk)

    def save(self) -> None:
        DemoRecord.objects.bulk_create(self._new, batch_size=500)
        self._new = []


class _Seeder:
    def __init__(self, *, password: str, summary: SeedSummary) -> None:
        self.password = password
        self.new_accounts: list[int] = []  # their password is set at the end, all at once
        self.summary = summary
        self.ledger = _Ledger()
        self.communes = {
            (commune.territory.name, commune.name): commune
            for commune in Commune.objects.select_related("territory__province")
        }
        self.agencies: dict[str, Agency] = {}
        self.users: dict[str, User] = {}
        self._found_agencies: dict[str, tuple[Agency, bool]] = {}
        self._found_users: dict[str, tuple[User, bool]] = {}

    def passwords_set(self) -> None:
        """Give the accounts this run created the demo password, in one update.

        Hashing is slow on purpose (~0.3 s each): the shared password is hashed once.
        """
        if self.new_accounts:
            password = make_password(self.password)
            User.objects.filter(pk__in=self.new_accounts).update(password=password)

    def address(self, *, agency_code: str, commune: str) -> dict[str, object]:
        place = self.communes[(AGENCIES_BY_CODE[agency_code].city, commune)]
        return {
            "province": place.territory.province,
            "territory": place.territory,
            "commune": place,
        }

    # Agencies

    def preload(self) -> None:
        """Fetch the demo's agencies and accounts in four queries, not one per record."""
        self._found_agencies = self._found(
            Agency.objects.select_related("province"),
            {spec.code: f"agency:{spec.code}" for spec in data.AGENCIES},
            field_name="code",
        )
        usernames = [spec.username for spec in staff_specs()] + [data.PORTAL_USERNAME]
        self._found_users = self._found(
            User.objects.all(), {name: f"user:{name}" for name in usernames}, "username"
        )

    def _found(
        self, queryset: models.QuerySet[M], keys: dict[str, str], field_name: str
    ) -> dict[str, tuple[M, bool]]:
        """Rows by natural key: the ledger's, else one with that name that predates the demo."""
        ids = {name: self.ledger.object_id(key, queryset.model) for name, key in keys.items()}
        by_id = queryset.in_bulk([pk for pk in ids.values() if pk is not None])
        unknown = [name for name, pk in ids.items() if pk is None]
        by_name = queryset.in_bulk(unknown, field_name=field_name)
        found = {name: (by_id[pk], False) for name, pk in ids.items() if pk is not None}
        found.update({name: (row, True) for name, row in by_name.items()})
        return found

    def agency_ensure(self, spec: data.AgencyData) -> None:
        key = f"agency:{spec.code}"
        agency, _preexisting = self._found_agencies.get(spec.code, (None, False))
        if agency is None:
            agency = self._agency_create(spec)
            self.ledger.remember(key, agency)
            self.summary.add("agencies")
        else:
            self.summary.count("agencies")
        if agency.province.code != spec.province_code:
            raise ApplicationError(
                _(
                    "The agency %(code)s exists in %(province)s, but the demo puts it in "
                    "%(expected)s: give that agency another code, then seed again."
                )
                % {
                    "code": agency.code,
                    "province": agency.province.name,
                    "expected": Province.objects.get(code=spec.province_code).name,
                }
            )
        self.agencies[spec.code] = agency

    def _agency_create(self, spec: data.AgencyData) -> Agency:
        agency = Agency(
            code=spec.code,
            name=spec.name,
            **self.address(agency_code=spec.code, commune=spec.commune),
            address_line=spec.address_line,
            phone=spec.phone,
            email=spec.email,
            latitude=Decimal(spec.latitude),
            longitude=Decimal(spec.longitude),
        )
        agency.full_clean()
        agency.save()
        for weekday, opens, closes in (
            data.HOURS_WITH_LUNCH_BREAK if spec.lunch_break else data.HOURS
        ):
            slot = OpeningHours(
                agency=agency,
                weekday=weekday,
                opens_at=dt.time.fromisoformat(opens),
                closes_at=dt.time.fromisoformat(closes),
            )
            slot.full_clean()
            slot.save()
            self.summary.add("opening hours")
        return agency

    # Accounts

    def _user_find(self, username: str) -> tuple[User | None, bool]:
        """The demo's account for ``username``, and whether it predates the demo."""
        return self._found_users.get(username, (None, False))

    def staff_ensure(self, spec: StaffSpec) -> None:
        agency = self.agencies[spec.agency_code] if spec.agency_code else None
        user, preexisting = self._user_find(spec.username)
        if user is None:
            user = employee_create(
                username=spec.username,
                first_name=spec.first_name,
                last_name=spec.last_name,
                roles=[spec.role],
                agency=agency,
                email=spec.email,
                phone=spec.phone,
            )
            self.new_accounts.append(user.pk)
            if spec.role is Role.ADMINISTRATOR:
                # The demo administrator reaches everything in the admin, e.g. beat schedules.
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
            self.ledger.remember(f"user:{spec.username}", user)
            self.summary.add("staff accounts")
        else:
            self.summary.count("staff accounts")
        self.users[spec.username] = user
        self.summary.accounts.append(
            DemoAccount(
                username=user.username,
                role=spec.role,
                agency=agency.name if agency else "all agencies (superuser)",
                preexisting=preexisting,
            )
        )

    def portal_ensure(self) -> None:
        spec = portal_client_spec()
        user, preexisting = self._user_find(data.PORTAL_USERNAME)
        if user is None:
            user = User(
                username=data.PORTAL_USERNAME,
                first_name=spec.first_name,
                last_name=spec.last_name,
                email=spec.email,
                phone=spec.phone,
            )
            user.set_unusable_password()
            user.full_clean()
            user.save()
            self.new_accounts.append(user.pk)
            user.groups.set([Group.objects.get(name=ROLE_GROUP_NAMES[Role.CLIENT])])
            self.ledger.remember(f"user:{data.PORTAL_USERNAME}", user)
            self.summary.add("client accounts")
        else:
            self.summary.count("client accounts")
        # Only an account the demo made is linked, and only if it has no client file yet.
        free = not preexisting and not Client.objects.filter(user=user).exists()
        client_id = self.client_ensure(spec, user=user if free else None)
        client = Client.objects.select_related("agency").get(pk=client_id)
        self.summary.accounts.append(
            DemoAccount(
                username=user.username,
                role=Role.CLIENT,
                agency=f"{client.agency.name}: client {client.number}",
                preexisting=preexisting,
            )
        )

    # Tariffs

    def tariffs_ensure(self) -> None:
        """The demo's tariff per site category, and today's exchange rate if none is known."""
        for code, name, category, currency, fixed, bands in data.TARIFFS:
            key = f"tariff:{code}"
            if (
                self.ledger.object_id(key, Tariff) is not None
                or Tariff.objects.filter(code=code).exists()
            ):
                self.summary.count("tariffs")
                continue
            if Tariff.objects.filter(category=category).exists():  # the utility's own
                continue
            created = tariff_save(
                tariff=Tariff(
                    code=code,
                    name=name,
                    category=category,
                    currency=currency,
                    fixed_monthly_charge=Decimal(fixed),
                    valid_from=dt.date(2026, 1, 1),
                ),
                bands=[
                    (None if up_to is None else Decimal(up_to), Decimal(price))
                    for up_to, price in bands
                ],
                actor=None,
            )
            self.ledger.remember(key, created)
            self.summary.add("tariffs")
        ExchangeRate.objects.get_or_create(
            day=clock.today(), defaults={"cdf_per_usd": Decimal(data.CDF_PER_USD)}
        )

    # Meters

    def meters_ensure(self, site_keys: list[str]) -> None:
        """Register and install the missing demo meters, with their recent history.

        The serials, prepaid secrets and registers are those of the simulator's meters
        (``sandbox.meters``), so what it reports continues what the demo stored.
        """
        installed_at = (clock.now() - dt.timedelta(days=METER_HISTORY_DAYS)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        history: list[Telemetry] = []
        for index, site_key in enumerate(site_keys, start=1):
            key = f"meter:{site_key}"
            serial = METER_SERIAL.format(index)
            site_id = self.ledger.object_id(site_key, Site)
            if self.ledger.object_id(key, Meter) is not None or site_id is None:
                self.summary.count("meters")
                continue
            if Meter.objects.filter(serial=serial).exists():  # made outside the demo: kept
                continue
            site = Site.objects.select_related("agency").get(pk=site_id)
            spec = MeterSpec.for_serial(serial, prepaid=_rng(key).random() < PREPAID_SHARE)
            meter = metering.meter_register(
                meter=Meter(
                    serial=serial,
                    vendor="Mwolo Sandbox",
                    hardware_model="SIM-1",
                    agency=site.agency,
                    payment_mode=PaymentMode.PREPAID if spec.prepaid else PaymentMode.POSTPAID,
                ),
                actor=None,
                token_secret=spec.secret_hex or "",
                token_count=TOKEN_START_COUNT,
            )
            metering.meter_install(
                meter_id=meter.pk,
                site=site,
                register_kwh=_register(spec, installed_at),
                actor=None,
                at=installed_at,
            )
            days = [installed_at + dt.timedelta(days=d) for d in range(1, METER_HISTORY_DAYS + 1)]
            history.append(
                Telemetry(
                    serial=serial,
                    readings=tuple(
                        Reading(at=day, energy_kwh=_register(spec, day), relay="on")
                        for day in days
                        if day <= clock.now()
                    ),
                )
            )
            self.ledger.remember(key, meter)
            self.summary.add("meters")
        for start in range(0, len(history), 100):
            metering.telemetry_ingest(messages=history[start : start + 100])

    # Invoices

    def invoices_ensure(self, site_keys: list[str]) -> None:
        """Last month's invoices of the demo's postpaid sites, issued (others' sites are
        never billed here; a second seed finds them issued and changes nothing)."""
        first_of_month = clock.today("Africa/Kinshasa").replace(day=1)
        period = (first_of_month - dt.timedelta(days=1)).replace(day=1)
        site_ids = [site_id for key in site_keys if (site_id := self.ledger.object_id(key, Site))]
        billing.invoices_draft(period=period, site_ids=site_ids)
        ours = Invoice.objects.filter(site_id__in=site_ids, period=period)
        drafts = ours.filter(status=Invoice.Status.DRAFT).values_list("pk", flat=True)
        issued = billing.invoices_issue(invoice_ids=list(drafts), actor=None).issued
        self.summary.present["invoices"] += ours.exclude(status=Invoice.Status.DRAFT).count()
        self.summary.created["invoices"] += issued

    # Clients and sites

    def client_ensure(self, spec: ClientSpec, *, user: User | None = None) -> int:
        """Create the client and sites of ``spec`` that are missing; returns the client's id."""
        client_id = self.ledger.object_id(spec.key, Client)
        client: Client | None = None
        if client_id is None:
            client = crm.client_save(client=self._client_build(spec, user=user), actor=None)
            client_id = client.pk
            self.ledger.remember(spec.key, client)
            self.summary.add("clients")
        else:
            self.summary.count("clients")
        for site_spec in spec.sites:
            if self.ledger.object_id(site_spec.key, Site) is not None:
                self.summary.count("sites")
                continue
            if client is None:  # a site deleted by hand: its client is needed again
                client = Client.objects.select_related("agency").get(pk=client_id)
            site = crm.site_save(site=self._site_build(site_spec, client=client), actor=None)
            self.ledger.remember(site_spec.key, site)
            self.summary.add("sites")
        return client_id

    def _client_build(self, spec: ClientSpec, *, user: User | None) -> Client:
        return Client(
            kind=spec.kind,
            first_name=spec.first_name,
            last_name=spec.last_name,
            middle_name=spec.middle_name,
            company_name=spec.company_name,
            rccm=spec.rccm,
            phone=spec.phone,
            phone_alt=spec.phone_alt,
            email=spec.email,
            preferred_language=spec.preferred_language,
            preferred_channel=spec.preferred_channel,
            agency=self.agencies[spec.agency_code],
            **self.address(agency_code=spec.agency_code, commune=spec.commune),
            address_line=spec.address_line,
            user=user,
        )

    def _site_build(self, spec: SiteSpec, *, client: Client) -> Site:
        return Site(
            client=client,
            agency=client.agency,
            label=spec.label,
            category=spec.category,
            **self.address(agency_code=client.agency.code, commune=spec.commune),
            address_line=spec.address_line,
            latitude=spec.latitude,
            longitude=spec.longitude,
        )

    # Connection requests

    def request_ensure(self, spec: RequestSpec) -> None:
        request_id = self.ledger.object_id(spec.key, ConnectionRequest)
        if request_id is not None:
            self.summary.count("connection requests")
            approved = ConnectionRequest.objects.filter(
                pk=request_id, status=ConnectionRequest.Status.APPROVED
            )
            if spec.request.outcome == "approved" and approved.exists():
                self.summary.count("clients")  # the client and site its approval made
                self.summary.count("sites")
            return
        wanted = spec.request
        request = crm.connection_request_submit(
            request=ConnectionRequest(
                kind=PartyKind.COMPANY if wanted.company_name else PartyKind.PERSON,
                first_name=wanted.first_name,
                last_name=wanted.last_name,
                middle_name=wanted.middle_name,
                company_name=wanted.company_name,
                rccm=wanted.rccm,
                phone=spec.phone,
                email=spec.email,
                agency=self.agencies[wanted.agency_code],
                **self.address(agency_code=wanted.agency_code, commune=wanted.commune),
                address_line=spec.address_line,
                latitude=spec.latitude,
                longitude=spec.longitude,
                category=wanted.category,
                message=wanted.message,
            )
        )
        self.ledger.remember(spec.key, request)
        self.summary.add("connection requests")
        if wanted.outcome == "pending":
            return
        reviewer = self._reviewer(wanted.agency_code)
        if reviewer is None:
            self.summary.warnings.append(
                _("%(reference)s left pending: the agency has no demo manager to review it.")
                % {"reference": request.reference}
            )
        elif wanted.outcome == "approved":
            crm.connection_request_approve(request_id=request.pk, actor=reviewer)
            self.summary.add("clients")
            self.summary.add("sites")
        else:
            crm.connection_request_reject(
                request_id=request.pk, actor=reviewer, reason=wanted.rejection_reason
            )

    def _reviewer(self, agency_code: str) -> User | None:
        """The agency's demo manager, if that account may still review its requests."""
        known = self.users.get(f"manager.{AGENCIES_BY_CODE[agency_code].slug}")
        if known is None:
            return None
        manager = User.objects.get(pk=known.pk)  # fresh: no stale permission cache
        agency = self.agencies[agency_code]
        if manager.has_perm(crm.REVIEW_PERMISSION) and can_act_for_agency(manager, agency.pk):
            return manager
        return None


def _reference_data_ensure() -> None:
    """Localities (the bundled CSV) and role groups: what the demo's records point to."""
    if not Province.objects.exists():
        raise ApplicationError(_("The provinces are missing: run “manage.py migrate” first."))
    with BUNDLED_LOCALITIES.open(encoding="utf-8-sig", newline="") as source:
        localities_import(source=source)
    roles_sync()


def demo_seed(*, client_count: int = data.DEFAULT_CLIENT_COUNT, password: str) -> SeedSummary:
    """Create whatever part of the demo data set is missing; report what is there.

    One transaction: an interrupted or failed seed leaves nothing behind. Idempotent and
    deterministic (see the module docstring). New accounts get ``password``; existing ones
    keep theirs. Raises ``ApplicationError`` when existing data blocks the demo (e.g. an
    agency with a demo code in another province), and then writes nothing.
    """
    if client_count < 0:
        raise ApplicationError(_("The number of clients cannot be negative."))
    if not password:
        raise ApplicationError(_("The demo accounts need a password."))
    started = time.perf_counter()
    summary = SeedSummary()
    with transaction.atomic():
        _reference_data_ensure()
        seeder = _Seeder(password=password, summary=summary)
        seeder.preload()
        for agency in data.AGENCIES:
            seeder.agency_ensure(agency)
        for staff in staff_specs():
            seeder.staff_ensure(staff)
        clients = client_specs(count=client_count)
        for client in clients:
            seeder.client_ensure(client)
        seeder.portal_ensure()
        # The portal client's site first: more clients later only add meters at the end.
        sites = [site for client in [portal_client_spec(), *clients] for site in client.sites]
        seeder.meters_ensure([site.key for site in sites])
        seeder.tariffs_ensure()
        seeder.invoices_ensure([site.key for site in sites])
        for request in request_specs():
            seeder.request_ensure(request)
        seeder.passwords_set()
        seeder.ledger.save()
    summary.seconds = time.perf_counter() - started
    return summary


# --- Telling the developer --------------------------------------------------------------------

SUMMARY_KINDS = (
    "agencies",
    "staff accounts",
    "clients",
    "sites",
    "connection requests",
    "meters",
    "tariffs",
    "invoices",
)


def summary_text(*, summary: SeedSummary, base_url: str, password_note: str) -> str:
    """The end-of-seed message: what is there, where to go, and who to log in as."""
    present = ", ".join(f"{summary.present[kind]} {kind}" for kind in SUMMARY_KINDS)
    created = ", ".join(f"{summary.created[k]} {k}" for k in SUMMARY_KINDS if summary.created[k])
    lines = [
        f"Demo data ready in {summary.seconds:.1f} s: {present}.",
        f"Created by this run: {created}." if created else "Nothing new: it was all there.",
        *(f"Warning: {warning}" for warning in summary.warnings),
        "",
        f"  Public site        {base_url}/",
        f"  Back office        {base_url}/admin/",
        f"  API documentation  {base_url}/api/docs/",
        "",
        f"Demo accounts (password: {password_note})",
    ]
    rows = [("username", "role", "agency"), ("-" * 8, "-" * 4, "-" * 6)]
    rows += [
        (
            account.username + (" *" if account.preexisting else ""),
            str(account.role.label),
            account.agency,
        )
        for account in summary.accounts
    ]
    user_width = max(len(row[0]) for row in rows) + 2
    role_width = max(len(row[1]) for row in rows) + 2
    lines += [f"  {u:<{user_width}}{r:<{role_width}}{a}".rstrip() for u, r, a in rows]
    if any(account.preexisting for account in summary.accounts):
        lines.append("  * existed before the demo: its own password and roles were kept.")
    return "\n".join(lines) + "\n"
