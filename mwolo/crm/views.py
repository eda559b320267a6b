from pathlib import PurePosixPath

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from mwolo.core.permissions import get_visible_or_404

from .models import Client


@require_GET
@login_required
def client_identity_document(request: HttpRequest, path: str) -> FileResponse:
    """A client's identity scan, for those who may see that client's file, and nobody else."""
    if not request.user.has_perm("crm.view_client"):
        raise PermissionDenied
    name = f"kyc/{path}"
    client = get_visible_or_404(Client.objects.all(), request.user, kyc_document=name)
    try:
        document = client.kyc_document.storage.open(name)
    except FileNotFoundError as missing:
        raise Http404 from missing
    response = FileResponse(document, as_attachment=True, filename=PurePosixPath(name).name)
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "sandbox"
    return response
