"""The console dashboard: the admin's home page for staff (``/admin/``, also ``/admin/console/``).

One page, four panels, each a partial template that htmx refreshes in place every few
seconds (``/admin/console/panel/<name>/``; django-htmx ships htmx: no CDN, no build step):

- ``summary``: the global kill switch, totals, the worker's heartbeat;
- ``accounts``: per account its effective trading state, last pass (age and result), open and
  persistent discrepancies, auto-repair (and any pause), positions with entry, mark and P&L
  (the API's figures, ``tradingstate.selectors.pnl``), balances, the discrepancy chart and
  quick actions;
- ``desk``: exposure by asset and the desk's P&L curve (``tradingstate.web.console.pnl``);
- ``feed``: the newest discrepancies, repairs, halts and notifications, each linked.

Every panel reads a fixed number of statements whatever the number of accounts or the size
of the history (tests/integration/web/test_console_dashboard.py states the bounds). Django's
model index stays one click away at ``/admin/models/``.
"""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlencode

from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from reconciliation.console import console_feed, console_rows
from reconciliation.models import Discrepancy
from tradingstate.models import Balance, Instrument
from tradingstate.selectors.pnl import pnl_reports
from tradingstate.web.console import pages
from tradingstate.web.console.pnl import console_exposure_desk
from tradingstate.web.health import worker_health

PANELS = ("summary", "accounts", "desk", "feed")
REFRESH_SECONDS = 5
FEED_LENGTH = 20


def _changelist(name: str, **params) -> str:
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _accounts_panel(console, now) -> dict:
    """Positions (with the API's P&L figures), balances and instrument steps per row."""
    accounts = [row.account for row in console.rows]
    ids = [a.pk for a in accounts]
    reports = pnl_reports(accounts, now=now) if accounts else {}
    steps = {
        (account_id, symbol): (amount_step or None, price_step or None)
        for account_id, symbol, amount_step, price_step in Instrument.objects.filter(
            account_id__in=ids
        ).values_list("account_id", "symbol", "amount_step", "price_step")
    }
    balances = defaultdict(list)
    for b in Balance.objects.filter(account_id__in=ids).order_by("currency"):
        balances[b.account_id].append(b)
    for row in console.rows:
        report = reports.get(row.account.name)
        row.pnl = report
        row.positions = [
            (line, steps.get((row.account.pk, line.symbol), (None, None)))
            for line in (report.positions if report else ())
        ]
        row.balances = balances.get(row.account.pk, [])
        row.links["positions"] = _changelist(
            "tradingstate_position", account__id__exact=row.account.pk
        )
        row.links["balances"] = _changelist(
            "tradingstate_balance", account__id__exact=row.account.pk
        )
        row.links["state"] = reverse("admin:console-state", args=[row.account.name])
        row.links["pnl"] = reverse("admin:console-pnl-account", args=[row.account.name])
    return {"console": console}


def panel_context(request, name: str, *, now=None, shared: dict | None = None) -> dict:
    """The context of one panel (``name`` in ``PANELS``). ``shared`` carries what several
    panels read (``console``: the account rows, ``worker``), so the whole page reads it once."""
    now = now or timezone.now()
    shared = shared if shared is not None else {}
    user = request.user
    if name == "summary":
        return {
            "console": shared.get("console") or console_rows(now=now, charts=False),
            "worker": shared.get("worker") or worker_health(now),
            "open_url": _changelist(
                "reconciliation_discrepancy", status__exact=Discrepancy.Status.OPEN
            ),
            "persistent_url": _changelist(
                "reconciliation_discrepancy",
                status__exact=Discrepancy.Status.OPEN,
                persistent__exact=1,
            ),
            "killswitch_url": reverse("admin:killswitch_killswitch_control"),
        }
    if name == "accounts":
        context = _accounts_panel(shared.get("console") or console_rows(now=now), now)
        return {
            **context,
            "worker": shared.get("worker") or worker_health(now),
            "can_reconcile": user.has_perm("tradingstate.reconcile_account"),
            "can_halt": user.has_perm("tradingstate.halt_account"),
            "can_resume": user.has_perm("killswitch.deactivate_killswitch"),
            "accounts_url": reverse("admin:tradingstate_exchangeaccount_changelist"),
        }
    if name == "desk":
        console = shared.get("console")
        accounts = [row.account for row in console.rows] if console else None
        return {"desk": console_exposure_desk(accounts, now=now)}
    if name == "feed":
        return {"feed": console_feed(limit=FEED_LENGTH)}
    raise Http404(f"no console panel {name!r}")


def dashboard_view(request, *, site):
    """GET /admin/ and /admin/console/ (staff only, through ``site.admin_view``)."""
    now = timezone.now()
    shared = {"console": console_rows(now=now), "worker": worker_health(now)}
    context = {
        **site.each_context(request),
        "title": "Reconciliation console",
        "now": now,
        "refresh_seconds": REFRESH_SECONDS,
        "models_url": reverse("admin:models"),
        "panels": {name: panel_context(request, name, now=now, shared=shared) for name in PANELS},
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/console.html", context)


def panel_view(request, name: str, *, site):
    """GET /admin/console/panel/<name>/: one panel's partial template (htmx swaps it in)."""
    if name not in PANELS:
        raise Http404(f"no console panel {name!r}")
    now = timezone.now()
    context = {**panel_context(request, name, now=now), "now": now, "panel": name}
    request.current_app = site.name
    response = TemplateResponse(request, f"admin/console/_{name}.html", context)
    response["Cache-Control"] = "no-store"
    return response


def register_dashboard(site) -> None:
    """The console as ``site``'s home (``admin:index`` and ``admin:console``), Django's model
    index at ``models/`` (``admin:models``), and the panels at ``console/panel/<name>/``."""
    if getattr(site, "dashboard_registered", False):
        return
    original = site.get_urls
    model_index = site.index

    def home(request, extra_context=None):
        return dashboard_view(request, site=site)

    def panel(request, name):
        return panel_view(request, name, site=site)

    def state(request, account):
        return pages.state_view(request, account, site=site)

    def state_panel(request, account):
        return pages.state_view(request, account, site=site, partial=True)

    def analytics(request):
        return pages.analytics_view(request, site=site)

    def get_urls():
        return [
            path("", site.admin_view(home), name="index"),
            path("console/", site.admin_view(home), name="console"),
            path("console/panel/<str:name>/", site.admin_view(panel), name="console-panel"),
            path("console/state/<str:account>/", site.admin_view(state), name="console-state"),
            path(
                "console/state/<str:account>/panel/",
                site.admin_view(state_panel),
                name="console-state-panel",
            ),
            path("console/analytics/", site.admin_view(analytics), name="console-analytics"),
            path("models/", site.admin_view(model_index), name="models"),
            *original(),
        ]

    site.get_urls = get_urls
    # the model sidebar takes a third of a 1,280 px screen; the model index is one click away
    site.enable_nav_sidebar = False
    site.dashboard_registered = True
