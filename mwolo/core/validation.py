from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _


def collect_errors(*checks: Callable[[], None]) -> None:
    """Run every check and raise one ``ValidationError`` holding all their field errors.

    A form then shows every problem at once instead of one per submission.
    """
    errors: dict = {}
    for check in checks:
        try:
            check()
        except ValidationError as error:
            errors = error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


@deconstructible
class MaxUploadSize:
    """Refuses uploads larger than ``megabytes`` (phones send big photos)."""

    def __init__(self, megabytes: int) -> None:
        self.megabytes = megabytes

    def __call__(self, upload: Any) -> None:
        if upload and upload.size > self.megabytes * 1024 * 1024:
            raise ValidationError(
                _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
                % {"size": round(upload.size / 1024 / 1024, 1), "limit": self.megabytes},
                code="file_too_large",
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaxUploadSize) and other.megabytes == self.megabytes
