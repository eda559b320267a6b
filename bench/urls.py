"""The project's routes plus one for the benchmarks to compare against: a JSON answer
that reads nothing (no database, no session, no template), through the same middleware.

Served only by the gunicorn a benchmark starts (``bench.settings``); never a route of the
product.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, path

from bench.harness import TRIVIAL_JSON_PATH
from config.urls import urlpatterns as project_urlpatterns


def trivial(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns: list[URLPattern | URLResolver] = [
    path(TRIVIAL_JSON_PATH.lstrip("/"), trivial),
    *project_urlpatterns,
]
