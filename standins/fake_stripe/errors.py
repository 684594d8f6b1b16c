"""Stripe's error shape: `{"error": {"type", "code", "message", "param"}}` + status."""

from __future__ import annotations


class StripeFakeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"type": type, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        self.body.update(extra or {})

    def as_json(self) -> dict:
        return {"error": self.body}


def invalid(message: str, *, param: str | None = None, code: str | None = None):
    return StripeFakeError(400, message, code=code or "parameter_invalid", param=param)


def missing(kind: str, object_id: str, param: str = "id") -> StripeFakeError:
    return StripeFakeError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def card_declined(extra: dict | None = None) -> StripeFakeError:
    return StripeFakeError(
        402,
        "Your card was declined.",
        type="card_error",
        code="card_declined",
        extra={"decline_code": "generic_decline", **(extra or {})},
    )
