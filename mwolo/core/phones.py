"""Congolese phone numbers: +243 followed by 9 digits, checked against libphonenumber's data."""

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField
from phonenumber_field.phonenumber import PhoneNumber, to_python

DRC_COUNTRY_CODE = 243
_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def _drc_number(value: object) -> PhoneNumber:
    number = to_python(value, region="CD")
    if not isinstance(number, PhoneNumber) or not number.is_valid():
        raise ValidationError(
            _("Invalid phone number: expected +243 followed by 9 digits (e.g. +243 81 234 5678)."),
            code="invalid_phone",
        )
    if number.country_code != DRC_COUNTRY_CODE:
        raise ValidationError(
            _("Only Congolese numbers (+243) are accepted."), code="foreign_phone"
        )
    return number


def validate_drc_phone(value: object) -> None:
    _drc_number(value)


def validate_drc_mobile(value: object) -> None:
    """A number that can receive SMS and mobile-money prompts."""
    number = _drc_number(value)
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValidationError(
            _("This is not a Congolese mobile number (e.g. +243 81 234 5678)."),
            code="not_mobile",
        )


class DrcPhoneField(PhoneNumberField):
    """A phone number stored as E.164, validated as Congolese (any line type)."""

    default_validators = [validate_drc_phone]

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("region", "CD")
        super().__init__(*args, **kwargs)


class DrcMobileField(DrcPhoneField):
    """A Congolese mobile number (SMS, mobile money)."""

    default_validators = [validate_drc_mobile]


def drc_mobile_e164(value: object) -> str:
    """``value`` as ``+243…`` if it is a Congolese mobile number; ValidationError if not."""
    validate_drc_mobile(value)
    return str(_drc_number(value).as_e164)
