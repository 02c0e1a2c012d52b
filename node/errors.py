"""The one exception tree of Shulian.

Every error a user can meet derives from :class:`ShulianError`. Each class
knows the gRPC status code it maps to (by name, so this module does not import
grpc), the machine-readable ``reason`` carried in error details, and the CLI
exit code (0 ok, 1 findings, 2 usage or input error, 3 node or broker
unavailable). Third-party exceptions are translated at the edge with
``raise ShulianError(...) from exc``.
"""

from __future__ import annotations

__all__ = [
    "ShulianError",
    "ConfigError",
    "InputError",
    "StandardError",
    "ValidationFailed",
    "PolicyDenied",
    "NotFound",
    "AlreadyExists",
    "Unauthenticated",
    "Unavailable",
    "IntegrityError",
    "EXIT_OK",
    "EXIT_FINDINGS",
    "EXIT_USAGE",
    "EXIT_UNAVAILABLE",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class ShulianError(Exception):
    """Root of every Shulian error."""

    grpc_status: str = "INTERNAL"
    reason: str = "INTERNAL"
    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class ConfigError(ShulianError):
    """A configuration file is missing, unparsable or has a bad key.

    The message names the file, the key and what is wrong.
    """

    grpc_status = "FAILED_PRECONDITION"
    reason = "BAD_CONFIG"

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        where = ""
        if file:
            where = f"{file}: "
        if key:
            where += f"[{key}] "
        super().__init__(where + message)
        self.file = file
        self.key = key


class InputError(ShulianError):
    """Input that cannot be processed at all (unreadable file, not JSON, unknown type)."""

    grpc_status = "INVALID_ARGUMENT"
    reason = "BAD_INPUT"


class StandardError(ShulianError):
    """The standard (ontology, shapes, code lists) is broken or cannot be compiled."""

    grpc_status = "INTERNAL"
    reason = "BAD_STANDARD"


class ValidationFailed(ShulianError):
    """A record breaks the standard."""

    grpc_status = "INVALID_ARGUMENT"
    reason = "INVALID_RECORD"
    exit_code = EXIT_FINDINGS


class PolicyDenied(ShulianError):
    """The responsibility list refuses the request; the message gives the basis."""

    grpc_status = "PERMISSION_DENIED"
    reason = "POLICY_DENIED"
    exit_code = EXIT_FINDINGS


class NotFound(ShulianError):
    grpc_status = "NOT_FOUND"
    reason = "NOT_FOUND"


class AlreadyExists(ShulianError):
    grpc_status = "ALREADY_EXISTS"
    reason = "ALREADY_EXISTS"


class Unauthenticated(ShulianError):
    """A peer's certificate is unknown, expired or not a federation member."""

    grpc_status = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"
    exit_code = EXIT_FINDINGS


class Unavailable(ShulianError):
    """A node or the Kafka broker cannot be reached."""

    grpc_status = "UNAVAILABLE"
    reason = "UNAVAILABLE"
    exit_code = EXIT_UNAVAILABLE


class IntegrityError(ShulianError):
    """Stored evidence or a signed document does not verify."""

    grpc_status = "DATA_LOSS"
    reason = "INTEGRITY"
    exit_code = EXIT_FINDINGS
