"""Forms of the public site. They parse and present; the models and services validate."""

from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import groupby
from typing import Any, cast

from django import forms
from django.db import models
from django.forms.models import ModelChoiceIterator
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from mwolo.agencies.models import Agency
from mwolo.crm.models import ConnectionRequest, PartyKind, SiteCategory
from mwolo.geo.models import Commune, Territory


class GroupedModelChoiceIterator(ModelChoiceIterator):
    """Options in ``<optgroup>``s so a long list is readable without JavaScript.

    The queryset must be ordered by the group first; rendering it takes one query.
    """

    field: "GroupedModelChoiceField"

    def __iter__(self) -> Iterator[Any]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for group, rows in groupby(self.queryset, key=self.field.group_by):
            yield (group, [self.choice(row) for row in rows])


class GroupedModelChoiceField(forms.ModelChoiceField):
    """Choices grouped by ``group_by(row)``, the label of each row's ``<optgroup>``."""

    iterator = GroupedModelChoiceIterator

    def __init__(
        self, queryset: models.QuerySet, *, group_by: Callable[[Any], str], **kwargs: Any
    ) -> None:
        self.group_by = group_by
        super().__init__(queryset, **kwargs)


class AgencyChoiceField(GroupedModelChoiceField):
    """Active agencies under their province: the one chosen must serve the site's province."""

    def __init__(self, queryset: models.QuerySet[Agency], **kwargs: Any) -> None:
        active = queryset.filter(is_active=True).select_related("province")
        super().__init__(
            active.order_by("province__name", "name"),
            group_by=lambda agency: agency.province.name,
            **kwargs,
        )

    def label_from_instance(self, obj: Agency) -> str:
        return obj.name


class TerritoryChoiceField(GroupedModelChoiceField):
    """Territories and cities under their province."""

    def __init__(self, queryset: models.QuerySet[Territory], **kwargs: Any) -> None:
        queryset = queryset.select_related("province").order_by("province__name", "name")
        super().__init__(queryset, group_by=lambda territory: territory.province.name, **kwargs)

    def label_from_instance(self, obj: Territory) -> str:
        return f"{obj.name} ({obj.get_kind_display().lower()})"


class CommuneChoiceField(GroupedModelChoiceField):
    """Communes, sectors and chiefdoms under their territory or city."""

    def __init__(self, queryset: models.QuerySet[Commune], **kwargs: Any) -> None:
        queryset = queryset.select_related("territory__province").order_by(
            "territory__province__name", "territory__name", "name"
        )
        super().__init__(queryset, group_by=self._territory_label, **kwargs)

    @staticmethod
    def _territory_label(commune: Commune) -> str:
        territory = commune.territory
        if territory.name == territory.province.name:
            return territory.name
        return f"{territory.name} – {territory.province.name}"

    def label_from_instance(self, obj: Commune) -> str:
        return obj.name


class CoordinateField(forms.DecimalField):
    """A latitude or longitude as people type or paste it, in any language.

    A decimal comma is read as a point (a coordinate has no thousands), and the extra
    digits a map application gives are rounded to the stored precision (about 10 cm).
    """

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        if isinstance(value, str):
            value = value.strip().replace(",", ".")
        number = super().to_python(value)
        if number is None or self.decimal_places is None:
            return number
        try:
            return number.quantize(Decimal(1).scaleb(-self.decimal_places), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return number  # too long to round: the max_digits check refuses it


class ConnectionRequestForm(forms.ModelForm):
    """The applicant's part of a ``ConnectionRequest``.

    Everything beyond parsing (names for a person, company name for a company, Congolese
    mobile phone, address chain, agency of the province, GPS inside the DRC) is checked by
    the model's ``clean`` and again by ``connection_request_submit``.
    """

    # Parsed by the model field, so the applicant reads the model's precise message
    # ("expected +243 followed by 9 digits") rather than the generic form-field one.
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=30,
        help_text=_("We will call you and send you SMS on this number, e.g. +243 81 234 5678."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    # The honeypot: no person sees it (hidden by CSS, out of the keyboard and screen-reader
    # order) but form-filling robots do, and "website" tempts them to fill it in.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    class Meta:
        model = ConnectionRequest
        fields = ConnectionRequest.APPLICANT_FIELDS
        field_classes = {
            "agency": AgencyChoiceField,
            "territory": TerritoryChoiceField,
            "commune": CommuneChoiceField,
            "latitude": CoordinateField,
            "longitude": CoordinateField,
        }
        labels = {
            "kind": _("You are applying as"),
            "first_name": _("First name"),
            "last_name": _("Last name"),
            "middle_name": _("Postnom"),
            "company_name": _("Company or organisation name"),
            "rccm": _("RCCM number"),
            "national_id": _("Identity document number"),
            "email": _("Email"),
            "preferred_language": _("Language for our messages"),
            "category": _("Type of premises"),
            "province": _("Province"),
            "territory": _("Territory or city"),
            "commune": _("Commune, sector or chiefdom"),
            "address_line": _("Address"),
            "latitude": _("Latitude"),
            "longitude": _("Longitude"),
            "agency": _("Agency"),
            "message": _("Message"),
        }
        help_texts = {
            "rccm": _("As on the trade register, e.g. CD/KNG/RCCM/14-B-01234."),
            "national_id": _("Voter card, passport or national identity card."),
            "address_line": _("Avenue and number, quarter, and a landmark if it helps."),
            "agency": _("The agency that will handle your request, in the site's province."),
            "message": _("Anything that helps us: access to the site, power needed, etc."),
        }
        widgets = {
            "kind": forms.RadioSelect,
            "preferred_language": forms.RadioSelect,
            "category": forms.RadioSelect,
            "message": forms.Textarea(attrs={"rows": 4}),
            "first_name": forms.TextInput(attrs={"autocomplete": "given-name"}),
            "last_name": forms.TextInput(attrs={"autocomplete": "family-name"}),
            "middle_name": forms.TextInput(attrs={"autocomplete": "additional-name"}),
            "company_name": forms.TextInput(attrs={"autocomplete": "organization"}),
            "email": forms.EmailInput(attrs={"autocomplete": "email"}),
            "address_line": forms.TextInput(attrs={"autocomplete": "street-address"}),
            # No decimal keypad for latitude: some phones' keypads have no minus sign.
            "latitude": forms.TextInput(attrs={"placeholder": "-4.3219"}),
            "longitude": forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "15.3070"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        # Radio buttons need no "---------" choice: the visitor picks one of the options.
        cast(forms.ChoiceField, self.fields["kind"]).choices = PartyKind.choices
        cast(forms.ChoiceField, self.fields["category"]).choices = SiteCategory.choices
        self.fields["kind"].initial = "person"
        self.fields["preferred_language"].initial = get_language()
        empty_labels = {
            "province": _("Choose a province"),
            "territory": _("Choose a territory or city"),
            "commune": _("Choose a commune"),
            "agency": _("Choose an agency"),
        }
        for name, label in empty_labels.items():
            cast(forms.ModelChoiceField, self.fields[name]).empty_label = label

    @property
    def filled_by_a_robot(self) -> bool:
        return bool(self.data.get("website", "").strip())
