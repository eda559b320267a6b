from .models import ConnectionRequest


def connection_request_reference_exists(*, reference: str) -> bool:
    return ConnectionRequest.objects.filter(reference=reference).exists()
