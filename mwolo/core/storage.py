from django.conf import settings
from django.core.files.storage import FileSystemStorage

PRIVATE_DOCUMENTS_URL = "/documents/"


def private_storage() -> FileSystemStorage:
    """Storage for files only a permission-checking view may hand out.

    Its URLs point at that view (``/documents/<path>``), never at the web server.
    """
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=PRIVATE_DOCUMENTS_URL)
