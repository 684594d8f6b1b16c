"""Cursor pagination for every list in the API: `{next, previous, results}`.

Strict about its query: a `cursor` that isn't one we handed out, or a `limit`
that isn't a whole number in range, is a 400 `invalid_request` naming it (DRF
would answer 404 for the one and quietly ignore the other)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination

from config.errors import InvalidRequest


class Cursor(CursorPagination):
    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception:
            raise InvalidRequest(
                "The `cursor` is not valid: use the `next` or `previous` link as given.",
                details={"cursor": ["Invalid cursor."]},
            ) from None

    def get_page_size(self, request):
        name = self.page_size_query_param
        if not name or name not in request.query_params:
            return self.page_size
        raw = request.query_params.getlist(name)
        limit = self.max_page_size or self.page_size
        if len(raw) != 1 or not raw[0].isdigit() or not 1 <= int(raw[0]) <= limit:
            raise InvalidRequest(
                f"`{name}` must be a whole number from 1 to {limit}.",
                details={name: [f"An integer from 1 to {limit}."]},
            )
        return int(raw[0])

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size or self.page_size,
                }
        return parameters
