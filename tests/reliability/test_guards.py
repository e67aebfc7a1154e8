"""Guards that hold (issue 13): the cross-tenant kill-switch matrix, chunked bodies over
real sockets (gunicorn and runserver), and a control-character sweep over every route of
the URLconf."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from killswitch.models import KillSwitch
from reconciliation.models import ReconciliationRun
from tests.api_support import api_cache_table, make_bot  # noqa: F401
from tests.factories import AccountFactory, StaffFactory, UserFactory
from tests.pg import requires_postgres
from tests.reliability.servers import raw_request, serving
from tradingstate.models import Order, PaperOrder

# --- the cross-tenant kill-switch matrix ------------------------------------------------------
ACCOUNTS = ("acct-a", "acct-b", "acct-c")
GRANTS = {"bot-a": {"acct-a"}, "bot-ac": {"acct-a", "acct-c"}, "bot-global": {"acct-a"}}
REQUESTS = [
    {},
    {"scope": "accounts"},
    {"scope": "global"},
    *({"account": name} for name in ACCOUNTS),
]


def _world():
    accounts = {name: AccountFactory(name=name) for name in ACCOUNTS}
    clients = {}
    for bot, names in GRANTS.items():
        client, user = make_bot(bot, *(accounts[n] for n in sorted(names)))
        if bot == "bot-global":
            user.user_permissions.add(Permission.objects.get(codename="activate_global"))
        clients[bot] = (client, names)
    for name, staff in (("staff-plain", UserFactory(username="plain", is_staff=True)),
                        ("staff-super", StaffFactory(username="root"))):  # fmt: skip
        client = APIClient()
        client.force_login(staff)
        clients[name] = (client, set(ACCOUNTS))
    return accounts, clients


def _reset(accounts):
    KillSwitch.objects.update(active=False, reason="", activated_by="", activated_at=None)
    PaperOrder.objects.all().delete()
    for name, account in accounts.items():
        PaperOrder.objects.create(
            account=account,
            exchange_order_id=f"V-{name}",
            symbol="BTC/USDT",
            side="buy",
            amount="1",
        )


def _expected(actor: str, body: dict, visible: set[str]) -> tuple[int, set[str], bool]:
    """(status, accounts halted, global halted) under the rule (README "Security model")."""
    is_bot = actor.startswith("bot")
    may_global = actor in ("staff-super", "bot-global")
    if "account" in body:
        return (
            (200, {body["account"]}, False) if body["account"] in visible else (404, set(), False)
        )
    scope = body.get("scope") or ("accounts" if is_bot else "global")
    if scope == "accounts":
        return (200, set(visible), False) if visible else (400, set(), False)
    return (200, set(), True) if may_global else (403, set(), False)


@pytest.mark.django_db
@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.bound(180)
def test_cross_tenant_kill_switch_matrix(figure, django_capture_on_commit_callbacks):
    accounts, clients = _world()
    cases = leaks = 0
    for actor, (client, visible) in clients.items():
        for body in REQUESTS:
            _reset(accounts)
            status, halted, global_on = _expected(actor, body, visible)
            # when
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    "/api/v1/killswitch/activate/",
                    {"reason": "matrix", "cancel_open_orders": True, **body},
                    format="json",
                )
            cases += 1
            # then: exactly the allowed halts, cancels only where the actor may act
            assert response.status_code == status, (actor, body, response.content)
            active = set(
                KillSwitch.objects.filter(active=True, account__isnull=False).values_list(
                    "account__name", flat=True
                )
            )
            assert active == halted, (actor, body, active)
            assert KillSwitch.objects.get(account__isnull=True).active == global_on, (actor, body)
            cancelled = set(
                PaperOrder.objects.exclude(status="open").values_list("account__name", flat=True)
            )
            may_cancel = (halted or (set(ACCOUNTS) if global_on else set())) & visible
            assert cancelled == (may_cancel if status == 200 else set()), (actor, body, cancelled)
            # and nothing about another tenant in the answer or in the bot's read
            if actor.startswith("bot"):
                texts = [
                    response.content.decode(),
                    client.get("/api/v1/killswitch/").content.decode(),
                ]
                for hidden in set(ACCOUNTS) - visible:
                    # (a 404 may echo the name the bot itself sent: that tells it nothing)
                    said = texts if body.get("account") != hidden else texts[1:]
                    if any(hidden in t or f"V-{hidden}" in t for t in said):
                        leaks += 1
    figure(ops=cases, cases=cases, leaks=leaks, repairs=0, lost=0, duplicates=0)
    assert leaks == 0
    assert cases == len(clients) * len(REQUESTS)


# --- chunked bodies over real sockets ------------------------------------------------------------
def _http(method: str, path: str, token: str, body: bytes | None, *, chunked: bool) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Token {token}",
             "Content-Type: application/json", "Connection: close"]  # fmt: skip
    payload = b""
    if body is not None and chunked:
        lines.append("Transfer-Encoding: chunked")
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            payload += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        payload += b"0\r\n\r\n"
    elif body is not None:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


ORDER = {"client_order_id": "sock-1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
         "quantity": "0.01", "price": "100"}  # fmt: skip


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.bound(240)
def test_chunked_bodies_over_real_sockets(figure):
    # given an account and its bot; gunicorn and runserver on the test's database
    account = AccountFactory(name="sock-acct")
    from tradingstate.actors import Actor
    from tradingstate.services import bot_create

    token = bot_create(name="sock-bot", account_names=[account.name], actor=Actor.system("t")).token
    runs = f"/api/v1/accounts/{account.name}/reconciliations/?wait=true"
    orders = f"/api/v1/accounts/{account.name}/orders/"
    dry = json.dumps({"dry_run": True}).encode()
    answers = {}
    for kind in ("gunicorn", "runserver"):
        with serving(kind) as base:
            # when: a chunked dry run and a chunked registration
            s1, _, b1 = raw_request(base, _http("POST", runs, token, dry, chunked=True))
            s2, _, b2 = raw_request(
                base, _http("POST", orders, token, json.dumps(ORDER).encode(), chunked=True)
            )
            # the same registration with Content-Length works (the server itself is fine)
            body = json.dumps({**ORDER, "client_order_id": f"len-{kind}"}).encode()
            s3, _, _ = raw_request(base, _http("POST", orders, token, body, chunked=False))
            # plain HTTP on loopback without DEBUG is served, not redirected ([web] tls "off")
            s4, h4, _ = raw_request(
                base, _http("GET", "/api/v1/accounts/", token, None, chunked=False)
            )
            # an over-long URL is the app's JSON 414, not the server's HTML
            long = f"{orders}?symbol={'A' * 5000}"
            s5, h5, b5 = raw_request(base, _http("GET", long, token, None, chunked=False))
            answers[kind] = [s1, s2, s3, s4, s5]
            # then
            assert (s1, json.loads(b1)["error"]) == (411, "length_required"), (kind, b1)
            assert (s2, json.loads(b2)["error"]) == (411, "length_required"), (kind, b2)
            assert s3 == 201, kind
            assert s4 == 200, (kind, s4, h4)
            assert s5 == 414 and h5["content-type"].startswith("application/json"), (kind, b5)
            assert json.loads(b5)["error"] == "uri_too_long"
    assert not ReconciliationRun.objects.exists()  # nothing ran, dry or live
    assert set(Order.objects.values_list("client_order_id", flat=True)) == {
        "len-gunicorn", "len-runserver"
    }  # fmt: skip
    figure(ops=10, answers=answers, refused_chunked=4, repairs=0, lost=0, duplicates=0)


# --- the control-character sweep over every route ------------------------------------------------
CONTROL = ["%00", "%01", "%09", "%0A", "%1F", "%7F", "%C2%80", "%C2%9F"]
CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")
REGEX_GROUP = re.compile(r"\(\?P<[^>]+>[^)]*\)")


def _routes(patterns, prefix: str = ""):
    """Every route of the URLconf as a path template with ``{}`` where a parameter goes."""
    for p in patterns:
        text = str(p.pattern)
        if text.startswith("^"):
            text = REGEX_GROUP.sub("{}", text.lstrip("^").rstrip("$").replace("\\Z", ""))
            text = text.replace("\\", "")
        else:
            text = CONVERTER.sub("{}", text)
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + text)
        elif isinstance(p, URLPattern):
            yield "/" + prefix + text


def _paths(template: str, char: str) -> list[str]:
    if "{}" in template:
        return [template.replace("{}", f"x{char}y")]
    # no parameter: the character in the path's last segment, and in the query string
    base = template.rstrip("/") or ""
    return [base + char + ("/" if template.endswith("/") else ""), template + f"?q=a{char}b"]


@pytest.mark.django_db
@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.bound(300)
def test_control_character_sweep_over_every_route(figure):
    account = AccountFactory(name="sweep")
    bot, _ = make_bot("sweep-bot", account)
    staff = APIClient()
    staff.force_login(StaffFactory(username="sweeper"))
    templates = sorted(set(_routes(get_resolver().url_patterns)))
    assert len(templates) > 50  # the admin's and the API's
    statuses: dict[int, int] = {}
    failures = []
    requests = 0
    for template in templates:
        for char in CONTROL:
            for path in _paths(template, char):
                for client in (bot, staff):
                    for method in ("get", "post"):
                        response = getattr(client, method)(path)
                        requests += 1
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                        json_error = response["Content-Type"].startswith("application/json")
                        if response.status_code not in (400, 404) or not json_error:
                            failures.append((template, char, method, response.status_code))
    figure(ops=requests, routes=len(templates), statuses=statuses, failures=len(failures),
           repairs=0, lost=0, duplicates=0)  # fmt: skip
    assert not failures, failures[:20]
