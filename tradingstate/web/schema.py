"""OpenAPI generation: every API operation documents the error shape for its error codes."""

from __future__ import annotations

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.openapi import AutoSchema

from tradingstate.api.serializers import ErrorSerializer

COMMON_ERRORS = ("400", "401", "403", "404", "405", "406", "411", "413", "414", "415", "429")
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


ACCOUNT_FROM_LIST = {"account": "$response.body#/results/0/name"}
ORDER_FROM_REGISTRATION = {
    "account": "$request.path.account",
    "client_order_id": "$response.body#/client_order_id",
}
# (source operation, its status) -> {link name: (target operationId, parameters)}
LINKS = {
    ("v1_accounts_list", "200"): {
        f"{target}": (target, ACCOUNT_FROM_LIST)
        for target in (
            "v1_accounts_orders_list",
            "v1_accounts_orders_create",
            "v1_accounts_positions_list",
            "v1_accounts_balances_list",
            "v1_accounts_fills_create",
            "v1_accounts_reconciliations_list",
            "v1_accounts_discrepancies_list",
            "v1_accounts_pnl_retrieve",
        )
    },
    ("v1_accounts_orders_create", "201"): {
        "GetOrder": ("v1_accounts_orders_retrieve", ORDER_FROM_REGISTRATION),
        "TransitionOrder": ("v1_accounts_orders_transition_create", ORDER_FROM_REGISTRATION),
    },
    ("v1_accounts_orders_create", "200"): {
        "GetOrder": ("v1_accounts_orders_retrieve", ORDER_FROM_REGISTRATION),
    },
}


def closed_request_bodies(result, generator, request, public):
    """SPECTACULAR postprocessing hook: request bodies refuse unknown fields at runtime
    (``InputSerializer``), so their schemas say ``additionalProperties: false``; and the
    OpenAPI links a stateful client (schemathesis) follows: an account from the account
    list, an order from its registration."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    known = {
        op.get("operationId")
        for ops in result.get("paths", {}).values()
        for op in ops.values()
        if isinstance(op, dict)
    }
    for ops in result.get("paths", {}).values():
        for op in ops.values():
            if not isinstance(op, dict):
                continue
            for status, response in op.get("responses", {}).items():
                links = LINKS.get((op.get("operationId"), status))
                if not links:
                    continue
                response["links"] = {
                    name: {"operationId": target, "parameters": dict(params)}
                    for name, (target, params) in links.items()
                    if target in known
                }
    return result
