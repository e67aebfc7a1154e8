"""OpenAPI generation: every API operation documents the error shape for its error codes."""

from __future__ import annotations

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.openapi import AutoSchema

from tradingstate.api.serializers import ErrorSerializer

COMMON_ERRORS = ("400", "401", "403", "404", "405", "406", "413", "415", "429")
WRITE_ERRORS = ("409",)


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if not self.path.startswith("/api/v1/"):
            return responses
        codes = COMMON_ERRORS + (WRITE_ERRORS if self.method in ("POST", "PUT", "PATCH") else ())
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    ErrorSerializer, code, direction=direction
                )
        return responses


class BotTokenScheme(KnoxTokenScheme):
    """Our one-statement knox authentication documents as knox's token scheme."""

    target_class = "tradingstate.web.auth.BotTokenAuthentication"


def closed_request_bodies(result, generator, request, public):
    """SPECTACULAR postprocessing hook: request bodies refuse unknown fields at runtime
    (``InputSerializer``), so their schemas say ``additionalProperties: false``."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result
