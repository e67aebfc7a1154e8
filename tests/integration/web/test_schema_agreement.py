"""D11 (issue 13): the schema says what the server enforces, and the server enforces what
the schema says: strict JSON types, closed request bodies, page sizes, minimum items."""

import json

import pytest
from werkzeug.test import Client

from killswitch.models import KillSwitch
from reconciliation.models import ReconciliationRun
from tests.api_support import (  # noqa: F401
    api_cache_table,
    assert_error,
    make_bot,
    two_accounts,
    url,
    wsgi_app,
)
from tests.factories import OrderFactory
from tradingstate.models import Position

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    OrderFactory(account=a, client_order_id="o1", status="submitted")
    return a, client


def test_a_number_is_not_a_reason(setup):
    _a, client = setup
    response = client.post("/api/v1/killswitch/activate/", {"reason": 0}, format="json")
    assert_error(response, 400, "validation_error", fields={"reason"})
    assert not KillSwitch.objects.filter(active=True).exists()


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_dry_run_takes_only_json_booleans(setup, value):
    a, client = setup
    response = client.post(url(a, "reconciliations"), {"dry_run": value}, format="json")
    assert_error(response, 400, "validation_error", fields={"dry_run"})
    assert not ReconciliationRun.objects.exists()


@pytest.mark.parametrize("value", ["null", "0", "-1", "1.5", "", "1e2"])
def test_page_size_must_be_a_positive_whole_number(setup, value):
    a, client = setup
    response = client.get(url(a, "orders") + f"?page_size={value}")
    assert_error(response, 400, "validation_error", fields={"page_size"})


def test_a_large_page_size_is_capped_not_refused(setup):
    a, client = setup
    assert client.get(url(a, "orders") + "?page_size=999999").status_code == 200


def test_unknown_fields_are_refused_by_the_kill_switch_too(setup):
    _a, client = setup
    response = client.post(
        "/api/v1/killswitch/activate/", {"reason": "x", "sneaky": True}, format="json"
    )
    assert_error(response, 400, "validation_error", fields={"sneaky"})
    assert not KillSwitch.objects.filter(active=True).exists()


@pytest.mark.parametrize("value", ["1", 1.0, True])
def test_versions_are_json_integers(setup, value):
    a, client = setup
    response = client.put(
        url(a, "positions", "BTC%2FUSDT"), {"qty": "1", "expected_version": value}, format="json"
    )
    assert_error(response, 400, "validation_error", fields={"expected_version"})
    assert not Position.objects.exists()


def test_the_schema_closes_request_bodies_and_states_the_limits():
    schema = json.loads(Client(wsgi_app()).get("/api/schema/?format=json").data)
    components = schema["components"]["schemas"]
    requests = {k: v for k, v in components.items() if k.endswith("Request")}
    assert len(requests) >= 9
    assert all(v.get("additionalProperties") is False for v in requests.values()), [
        k for k, v in requests.items() if v.get("additionalProperties") is not False
    ]
    updates = components["OrderBulkTransitionInputRequest"]["properties"]["updates"]
    assert updates["minItems"] == 1
    amount = components["OrderRegisterInputRequest"]["properties"]["quantity"]
    assert amount["type"] == "string" and amount["pattern"].startswith("^-?[0-9]{1,20}")
    orders = schema["paths"]["/api/v1/accounts/{account}/orders/"]["get"]["parameters"]
    page_size = next(p for p in orders if p["name"] == "page_size")
    assert page_size["schema"] == {"type": "integer", "minimum": 1}


@pytest.mark.parametrize("path", ["orders/?active={}", "fills/?inferred={}", "fills/?external={}"])
@pytest.mark.parametrize("value", ["null", "5", "yes", "1", ""])
def test_boolean_filters_take_only_true_or_false(setup, path, value):
    # schemathesis found ?inferred=null accepted on the fills list (read as "no filter")
    a, client = setup
    name = path.split("?")[1].split("=")[0]
    response = client.get(url(a, path.split("/")[0]) + "?" + path.split("?")[1].format(value))
    assert_error(response, 400, "validation_error", fields={name})


def test_every_boolean_filter_of_the_api_is_strict():
    """The class: django-filter's BooleanFilter reads anything but true/false as "not given",
    while the schema says boolean. Every FilterSet the API uses must use the strict one."""
    import django_filters

    from tradingstate.api.filtersets import StrictBooleanFilter
    from tradingstate.web import urls  # noqa: F401  (imports every API view and its filters)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    loose = [
        f"{fs.__module__}.{fs.__name__}.{name}"
        for fs in subclasses(django_filters.FilterSet)
        if fs.__module__.split(".")[0] in ("tradingstate", "reconciliation", "killswitch")
        for name, f in fs.base_filters.items()
        if isinstance(f, django_filters.BooleanFilter) and not isinstance(f, StrictBooleanFilter)
    ]
    assert not loose, loose


@pytest.mark.parametrize(
    "query",
    [
        "orders/?status=",
        "orders/?symbol=",
        "fills/?origin=",
        "fills/?since=",
        "discrepancies/?type=",
        "discrepancies/?status=",
    ],
)
def test_a_filter_given_empty_is_refused_not_ignored(setup, query):
    # schemathesis: ?type= listed every discrepancy (an empty enum read as "no filter")
    a, client = setup
    path, param = query.split("?")
    response = client.get(url(a, path.rstrip("/")) + "?" + param)
    assert_error(response, 400, "validation_error", fields={param.rstrip("=")})


def test_every_filtered_list_of_the_api_uses_the_strict_backend():
    from django.urls import get_resolver

    from tradingstate.web.filters import StrictFilterBackend

    def views(patterns):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from views(p.url_patterns)
            else:
                cls = getattr(p.callback, "cls", None)
                if cls is not None:
                    yield cls

    filtered = [
        v for v in views(get_resolver().url_patterns) if getattr(v, "filterset_class", None)
    ]
    assert len(filtered) >= 4, filtered
    loose = [v.__name__ for v in filtered if StrictFilterBackend not in v.filter_backends]
    assert not loose, loose
