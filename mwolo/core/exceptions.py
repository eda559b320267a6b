class ApplicationError(Exception):
    """A business rule refused the request. ``message`` is shown to the user as is.

    The API maps it to HTTP 400 (or ``status``) with ``{"detail": message, **extra}``.
    Field-level problems are raised as Django's ``ValidationError`` instead.
    """

    def __init__(self, message: str, *, extra: dict | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.status = status
