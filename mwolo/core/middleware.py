import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers


class AgencyTimezoneMiddleware:
    """Show times in the zone of the user's agency (Kinshasa west, Lubumbashi east).

    Employees see their home agency's zone, clients their own agency's; anonymous visitors
    get the default (Africa/Kinshasa). Times are stored in UTC regardless.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone_name = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            zone_name = user.display_time_zone
        # override() restores the previous zone afterwards: nothing leaks to the next request.
        with timezone.override(zoneinfo.ZoneInfo(zone_name) if zone_name else None):
            return self.get_response(request)


class LanguageMiddleware:
    """French unless the user chose otherwise, whatever the browser's language.

    Staff and clients often use phones set to English; the platform speaks French first.
    The choice comes from the language switch (Django's ``set_language`` cookie), then from
    the user's ``preferred_language``, then ``LANGUAGE_CODE``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        user = getattr(request, "user", None)
        if language not in self.supported and user is not None and user.is_authenticated:
            language = user.preferred_language
        if language not in self.supported:
            language = settings.LANGUAGE_CODE
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        patch_vary_headers(response, ["Cookie"])
        return response
