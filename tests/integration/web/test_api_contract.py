"""The API's cross-cutting contract: one error shape, strict JSON, body cap, charsets,
pagination, throttling, JSON errors outside DRF, health, the schema and the docs."""

import base64
import io
import json
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api_support import (
    API,
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    order_body,
    override_api_config,
    two_accounts,
    url,
    wsgi_app,
)
from tests.factories import OrderFactory, PositionFactory, StaffFactory
from tradingstate.models import Order, RateCounter
from tradingstate.web.parsers import RequestTooLarge, StrictJSONParser

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, user = make_bot("alpha", a)
    return a, client, user


def post_raw(client, path, raw, content_type="application/json"):
    return client.generic("POST", path, raw, content_type=content_type)


# --- strict JSON -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ('{"quantity": NaN}', "NaN"),
        ('{"quantity": Infinity}', "Infinity"),
        ('{"quantity": -Infinity}', "-Infinity"),
        ('{"a": 1, "a": 2}', "duplicate key"),
        ("{not json", "JSON parse error"),
        ('{"q": 1' + "0" * 5000 + "}", "JSON parse error"),
    ],
)
def test_bad_json_is_400_parse_error(setup, raw, needle):
    a, client, _ = setup
    body = assert_error(post_raw(client, url(a, "orders"), raw), 400, "parse_error")
    assert needle in body["detail"]


def test_deeply_nested_json_is_400_not_500(setup):
    a, client, _ = setup
    for raw in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        assert_error(post_raw(client, url(a, "orders"), raw), 400, "parse_error")
    # moderately nested but parseable: a field error, not a crash
    response = client.post(url(a, "orders"), order_body(symbol=[[[[[["x"]]]]]]), format="json")
    assert_error(response, 400, "validation_error")


def test_invalid_utf8_is_400(setup):
    a, client, _ = setup
    assert_error(post_raw(client, url(a, "orders"), b'{"a": "\xff\xfe"}'), 400, "parse_error")


LONE = "\\ud800"  # JSON text: half a UTF-16 pair, valid ASCII, not a character


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("orders", '{"side": "' + LONE + '"}'),  # a choice field echoes the value back
        ("orders", '{"' + LONE + '": 1}'),  # an unknown key is named in the error
        ("orders", '{"client_order_id": "a", "note": ["x", {"k": "\\uDFFF"}]}'),
        ("killswitch", '{"scope": "' + LONE + '"}'),
    ],
)
def test_a_lone_surrogate_escape_is_400_not_500(setup, path, raw):
    a, client, _ = setup
    endpoint = "/api/v1/killswitch/activate/" if path == "killswitch" else url(a, path)
    body = assert_error(post_raw(client, endpoint, raw), 400, "parse_error")
    assert "surrogate" in body["detail"]


def test_a_lone_surrogate_in_a_bulk_item_writes_nothing(setup):
    # the first item is valid: it was committed, then the answer failed to render (500)
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="o1")
    raw = (
        '{"updates": [{"client_order_id": "o1", "status": "submitted"}, '
        '{"client_order_id": "' + LONE + '", "status": "submitted"}]}'
    )
    body = assert_error(
        post_raw(client, url(a, "orders", "bulk-transition"), raw), 400, "parse_error"
    )
    assert "\\ud800" in body["detail"]
    order = Order.objects.get(account=a, client_order_id="o1")
    assert (order.status, order.version) == ("pending", 1)


def test_a_surrogate_pair_is_a_character_and_reaches_validation(setup):
    a, client, _ = setup
    raw = '{"side": "\\ud83d\\ude00"}'  # U+1F600, written as its UTF-16 pair
    body = assert_error(post_raw(client, url(a, "orders"), raw), 400, "validation_error")
    assert "side" in body["fields"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=bz2_codec",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "application/json; charset=nonsense",
    ],
)
def test_other_charsets_are_415(setup, content_type):
    a, client, _ = setup
    response = post_raw(client, url(a, "orders"), b"BZh91AY&SY", content_type)
    assert_error(response, 415, "unsupported_media_type")
    # also on a GET with a query string, which Django would decode with that charset: the
    # WSGI application answers before Django builds the request
    status, headers, body = wsgi_get(url(a, "orders"), "status=pending", content_type)
    assert status.startswith("415") and dict(headers)["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == "unsupported_media_type"


def test_wsgi_guard_outside_the_api_refuses_only_non_text_codecs():
    status, _, _ = wsgi_get("/admin/", "q=1", "text/html; charset=bz2_codec")
    assert status.startswith("415")
    status, _, _ = wsgi_get("/admin/login/", "q=1", "text/html; charset=latin-1")
    assert status.startswith("200")


def wsgi_get(path, query, content_type):
    application = wsgi_app()
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(status=status, headers=headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }
    body = b"".join(application(environ, start_response))
    return captured["status"], captured["headers"], body


def test_utf8_charset_spelled_any_way_is_fine(setup):
    a, client, _ = setup
    raw = '{"client_order_id": "c1", "symbol": "BTC/USDT", "side": "buy", "quantity": "1",'
    raw += ' "price": "1"}'
    response = post_raw(client, url(a, "orders"), raw, "application/json; charset=UTF-8")
    assert response.status_code == 201


def test_form_bodies_are_415(setup):
    a, client, _ = setup
    response = client.post(url(a, "orders"), order_body())  # multipart
    assert_error(response, 415, "unsupported_media_type")


# --- body cap --------------------------------------------------------------------------------
def test_body_over_the_cap_is_413(setup, settings):
    a, client, _ = setup
    override_api_config(settings, max_body_bytes=2048)
    big = '{"client_order_id": "' + "x" * 4000 + '"}'
    response = post_raw(client, url(a, "orders"), big)
    body = assert_error(response, 413, "request_too_large")
    assert "2048" in body["detail"]
    small = order_body(reason="x" * 500)
    assert client.post(url(a, "orders"), small, format="json").status_code == 201


def test_default_cap_applies_to_json_bodies(setup, settings):
    a, client, _ = setup
    cap = settings.TRADINGSTATE.api.max_body_bytes
    big = '{"reason": "' + "x" * (cap + 10) + '"}'
    assert_error(post_raw(client, url(a, "orders"), big), 413, "request_too_large")
    assert not Order.objects.exists()


def test_parser_caps_a_stream_without_content_length(settings):
    # a chunked body (no Content-Length) is read at most cap + 1 bytes, then refused
    override_api_config(settings, max_body_bytes=1024)
    stream = io.BytesIO(b" " * 10_000 + b"{}")
    with pytest.raises(RequestTooLarge):
        StrictJSONParser().parse(stream, "application/json", {})
    assert stream.tell() == 1025


def test_parser_reads_exact_decimals():
    parsed = StrictJSONParser().parse(io.BytesIO(b'{"q": 0.1, "n": 3}'), "application/json", {})
    assert parsed == {"q": Decimal("0.1"), "n": 3}
    assert isinstance(parsed["q"], Decimal)


# --- pagination ------------------------------------------------------------------------------
def test_cursor_pagination_newest_first_and_page_size_capped(setup, settings):
    a, client, _ = setup
    override_api_config(settings, page_size=2, max_page_size=3)
    for i in range(5):
        PositionFactory(account=a, symbol=f"S{i}/USDT")
    first = client.get(url(a, "positions")).json()
    assert [r["symbol"] for r in first["results"]] == ["S4/USDT", "S3/USDT"]
    second = client.get(first["next"]).json()
    assert [r["symbol"] for r in second["results"]] == ["S2/USDT", "S1/USDT"]
    capped = client.get(url(a, "positions"), {"page_size": 10**9}).json()
    assert len(capped["results"]) == 3  # capped at max_page_size, not an error


def test_invalid_cursor_is_400(setup):
    a, client, _ = setup
    response = client.get(url(a, "positions"), {"cursor": "garbage"})
    assert_error(response, 400, "validation_error", fields={"cursor"})


# --- throttling --------------------------------------------------------------------------------
def test_bots_are_throttled_in_the_shared_store(setup, settings):
    _a, client, user = setup
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"bot": "3/min"},
    }
    for _ in range(3):
        assert client.get(f"{API}/accounts/").status_code == 200
    response = client.get(f"{API}/accounts/")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # counted where every process sees it: the counter table (Redis when configured)
    assert [(r.key, r.current) for r in RateCounter.objects.all()] == [
        (f"throttle_bot_{user.pk}", 3)
    ]
    staff = APIClient()
    staff.force_login(StaffFactory(username="alice"))
    for _ in range(5):
        assert staff.get(f"{API}/accounts/").status_code == 200
    cache.clear()


# --- errors outside DRF ------------------------------------------------------------------------
def test_unknown_api_path_is_json_404(setup):
    _, client, _ = setup
    for path in ("/api/v1/nope/", "/api/nothing", "/api/v1/accounts/acct-a/positions//"):
        assert_error(client.get(path), 404, "not_found")


def test_non_api_404_stays_html(client):
    response = client.get("/definitely-not-here/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_crash_is_json_500(setup, monkeypatch):
    _a, _, user = setup
    from tradingstate.api.views import accounts

    def boom(self):
        raise RuntimeError("bug")

    monkeypatch.setattr(accounts.AccountListApi, "get_queryset", boom)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    body = assert_error(client.get(f"{API}/accounts/"), 500, "server_error")
    assert "bug" not in body["detail"]


def test_method_not_allowed_shape(setup):
    a, client, _ = setup
    assert_error(client.delete(url(a, "orders")), 405, "method_not_allowed")
    # GET .../fills/ is served since issue 14; DELETE is not
    assert_error(client.delete(url(a, "fills")), 405, "method_not_allowed")


# --- health ------------------------------------------------------------------------------------
def test_health_unauthenticated_has_no_account_detail(setup):
    _a, _, _ = setup
    response = APIClient().get(f"{API}/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["db"] == "ok" and body["status"] in ("ok", "degraded")
    assert "accounts" not in body
    assert "acct-a" not in response.content.decode()


def test_health_for_a_bot_lists_its_accounts_and_pass_age(setup):
    a, client, _ = setup
    from reconciliation.models import ReconciliationRun, WorkerHeartbeat

    WorkerHeartbeat.objects.create(role="ticker", holder="host:1", beat_at=timezone.now())
    ReconciliationRun.objects.create(
        account=a, trigger="schedule", status="completed", finished_at=timezone.now()
    )
    body = client.get(f"{API}/health/").json()
    assert body["status"] == "ok" and body["worker"]["ok"] is True
    assert body["worker"]["source"] in ("heartbeat", "reconciliation_run")
    assert [row["name"] for row in body["accounts"]] == ["acct-a"]  # not acct-b
    assert body["accounts"][0]["last_pass_age_seconds"] is not None
    assert "host:1" not in str(body)


# --- schema and docs -----------------------------------------------------------------------------
def test_schema_lists_the_contract_paths(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert {
        "/api/v1/health/",
        "/api/v1/accounts/",
        "/api/v1/accounts/{account}/orders/",
        "/api/v1/accounts/{account}/orders/{client_order_id}/",
        "/api/v1/accounts/{account}/orders/{client_order_id}/transition/",
        "/api/v1/accounts/{account}/orders/bulk-transition/",
        "/api/v1/accounts/{account}/fills/",
        "/api/v1/accounts/{account}/positions/",
        "/api/v1/accounts/{account}/positions/{symbol}/",
        "/api/v1/accounts/{account}/balances/",
        "/api/v1/accounts/{account}/balances/{currency}/",
    } <= paths


def test_docs_page_uses_local_static_files_only(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert 'src="http' not in html and 'href="http' not in html and "//cdn" not in html


def test_sidecar_assets_are_findable():
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_schema_generates_without_warnings(tmp_path):
    # every view, serializer and authenticator resolves: no "could not resolve" fallbacks
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "knoxApiToken" in out.read_text()


# --- input fields are strict (the class of "DRF reads 'yes' as true") ------------------------
def _input_serializers():
    from django.urls import get_resolver

    from tradingstate.api.serializers import InputSerializer

    get_resolver().url_patterns  # noqa: B018  (imports every door's views)
    found, todo = set(), [InputSerializer]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_every_api_input_field_takes_only_its_json_type():
    from rest_framework import serializers

    from tradingstate.api import fields

    # DRF's own fields coerce: BooleanField reads "yes", 1 and "off"; IntegerField "5" and
    # 5.0; CharField a number; DecimalField and FloatField are not exact or not text
    lax = {
        serializers.BooleanField: fields.StrictBooleanField,
        serializers.IntegerField: fields.StrictIntegerField,
        serializers.CharField: fields.StrictCharField,
        serializers.DecimalField: fields.AmountField,
        serializers.FloatField: fields.AmountField,
    }
    # a query string is text: its serializers (QuerySerializer) parse text on purpose
    classes = [c for c in _input_serializers() if c.__name__ != "QuerySerializer"]
    assert len(classes) >= 8  # the doors' bodies were found
    offenders = [
        f"{cls.__module__}.{cls.__qualname__}.{name}: {type(field).__name__}, use "
        f"{lax[type(field)].__name__}"
        for cls in classes
        for name, field in cls().fields.items()
        if type(field) in lax
    ]
    assert offenders == []


@pytest.mark.parametrize("value", ["yes", "T", 1, 0, "off", ""])
def test_is_maker_is_a_json_boolean(setup, value):
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="o1", status="submitted")
    response = client.post(
        url(a, "fills"),
        {"client_order_id": "o1", "trade_id": "t1", "quantity": "0.1", "price": "100",
         "is_maker": value},
        format="json",
    )  # fmt: skip
    assert_error(response, 400, "validation_error", fields={"is_maker"})
    assert not Order.objects.get(client_order_id="o1").fills.exists()


def _get_with_cursor(setup, path: str, raw: str):
    """GET a list of ``setup``'s account (one P&L snapshot in it) with ``raw`` as its cursor."""
    from tradingstate.models import PnlSnapshot

    a, client, _ = setup
    now = timezone.now()
    PnlSnapshot.objects.create(account=a, taken_at=now, recorded_at=now, valuation_currency="USDT")
    cursor = base64.b64encode(raw.encode()).decode()
    return client.get(url(a, *path.split("/")), {"cursor": cursor, "page_size": "1"})


@pytest.mark.parametrize(
    "path", ["pnl/history", "orders", "fills", "discrepancies", "reconciliations"]
)
@pytest.mark.parametrize("raw", ["p=abc", "o=5&p=x", "p=99999999999999999999999", "p=1e5"])
def test_a_cursor_whose_position_is_not_a_value_of_the_ordering_is_400(setup, path, raw):
    # a well-formed cursor carrying any text as its position reached the query: a 500
    response = _get_with_cursor(setup, path, raw)
    assert_error(response, 400, "validation_error", fields={"cursor"})


@pytest.mark.parametrize("path", ["pnl/history", "orders", "fills"])
@pytest.mark.parametrize("raw", ["p=2026", "p=1&r=1"])
def test_a_cursor_position_is_read_as_its_orderings_value(setup, path, raw):
    # an id where the list is ordered by id (a page), not a time where it is ordered by time
    response = _get_with_cursor(setup, path, raw)
    if path == "pnl/history":
        assert_error(response, 400, "validation_error", fields={"cursor"})
    else:
        assert response.status_code == 200, response.content
