"""A bounded property-based run of schemathesis over the whole generated OpenAPI schema,
in-process through the WSGI application, as a bot: no 5xx, and status codes, content types
and bodies conform to the schema.

schemathesis' own pytest plugin (``from_fixture``/``parametrize``) does not run under
pytest 9 (it sets ``node._nodeid``), so the operations are driven here with hypothesis.
"""

import json

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client

from tests.api_support import (  # noqa: F401
    api_cache_table,
    make_bot,
    override_api_config,
    wsgi_app,
)
from tests.factories import AccountFactory, OrderFactory, PositionFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 12


def load_schema():
    application = wsgi_app()
    # served as application/vnd.oai.openapi+json, which from_wsgi does not parse: load it here
    response = Client(application).get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = schemathesis.openapi.from_dict(json.loads(response.data))
    schema.app = application
    return schema


@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.django_db
def test_every_operation_conforms_to_the_schema(settings, monkeypatch):
    # given: a bot granted one account with an order and a position; no worker, so a
    # ?wait=true trigger waits at most a second
    override_api_config(settings, reconcile_wait_seconds=1)
    monkeypatch.setattr("reconciliation.passes.triggers.enqueue_pass", lambda *args, **kwargs: None)
    account = AccountFactory(name="acct-a")
    OrderFactory(account=account, client_order_id="abc123")
    PositionFactory(account=account, symbol="BTC/USDT")
    client, _ = make_bot("fuzz-bot", account)
    token = client._credentials["HTTP_AUTHORIZATION"]
    schema = load_schema()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures = {}
    statuses: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if "account" in (case.path_parameters or {}):
                case.path_parameters["account"] = "acct-a"  # a granted account: views run
            response = case.call_and_validate(headers={"Authorization": token}, checks=CHECKS)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        # when
        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    # then
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert set(statuses) == {op.label for op in operations}
    # the run reached the views, not only the authentication layer
    successes = {label for label, codes in statuses.items() if any(c < 300 for c in codes)}
    assert {
        "GET /api/v1/accounts/",
        "GET /api/v1/accounts/{account}/orders/",
        "GET /api/v1/accounts/{account}/positions/",
    } <= successes, statuses
