from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class PublicFormThrottle(SimpleRateThrottle):
    """Submissions of a public form (web or API) per caller address: ``public_form`` rate.

    One counter for both doors, in the shared cache, so a robot cannot double its quota by
    alternating them.
    """

    scope = "public_form"

    def get_cache_key(self, request: Request, view: APIView | None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allows(self, request: HttpRequest) -> bool:
        """The same check from a plain Django view (only the request's address is read)."""
        return self.allow_request(request, None)  # type: ignore[arg-type]


def client_address(request: HttpRequest) -> str:
    """The caller's address, read as the throttles read it (``DJANGO_PROXY_COUNT``)."""
    return PublicFormThrottle().get_ident(request)  # type: ignore[arg-type]
