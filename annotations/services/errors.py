"""Domain errors raised by services; the API maps each to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base: a request that cannot be carried out, with a message a user can act on."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class NotAllowed(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PreconditionRequired(DomainError):
    """A write without If-Match (RFC 6585, 428)."""

    status_code = 428
    code = "precondition_required"


class PreconditionFailed(DomainError):
    """A write whose If-Match names an older version (RFC 9110, 412)."""

    status_code = 412
    code = "precondition_failed"
