"""Identifiers end where the string ends: Python's ``$`` also matches before a final newline,
so ``"o1\n"`` passed ``^…$`` checks and was stored, and then no URL could name the order
(the framing guard refuses control characters in paths). Every check is compiled by
``whole_string`` (``\\Z``); these tests hold every model validator and every module-level
pattern of the product to it, and the doors (API, model, config, bots) to the behaviour."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator

from tests.api_support import api_cache_table, assert_error, make_bot, url  # noqa: F401
from tests.factories import AccountFactory
from tradingstate.actors import Actor
from tradingstate.config import ExchangeConfig
from tradingstate.errors import ValidationFailed
from tradingstate.models import ExchangeAccount, Order
from tradingstate.services import bot_create

APPS = ("tradingstate", "killswitch", "reconciliation")


def _ends_like_dollar(pattern: str) -> bool:
    return pattern.endswith("$") and not pattern.endswith(r"\$")


def test_every_model_regex_validator_ends_at_the_string_end():
    checked = []
    for model in apps.get_models():
        if model.__module__.split(".")[0] not in APPS:
            continue
        for field in model._meta.concrete_fields:
            for validator in field.validators:
                if isinstance(validator, RegexValidator):
                    pattern = validator.regex.pattern
                    assert not _ends_like_dollar(pattern), (model, field.name, pattern)
                    checked.append((model.__name__, field.name))
    assert ("Order", "client_order_id") in checked and ("ExchangeAccount", "name") in checked


def test_no_module_level_pattern_of_the_product_is_anchored_with_a_bare_dollar():
    found = []
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, f"{app}."):
            if ".migrations" in info.name or info.name.endswith("tests"):
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if isinstance(value, re.Pattern):
                    found.append(name)
                    assert not _ends_like_dollar(value.pattern), (info.name, name, value.pattern)
    assert "BOT_NAME_RE" in found and "ACCOUNT_NAME_RE" in found


def test_whole_string_refuses_a_final_newline_and_takes_only_anchored_patterns():
    from tradingstate.rules.values import whole_string

    assert whole_string(r"^[a-z]+$").search("ab")
    assert not whole_string(r"^[a-z]+$").search("ab\n")
    with pytest.raises(ValueError, match="expected a"):
        whole_string(r"[a-z]+")


@pytest.mark.django_db
@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.parametrize("coid", ["o1\n", "o1\r\n", "\no1"])
def test_registration_refuses_a_client_order_id_with_a_newline(coid):
    account = AccountFactory(name="acct-nl")
    client, _ = make_bot("alpha", account)
    body = {"client_order_id": coid, "symbol": "BTC/USDT", "side": "buy", "type": "limit",
            "quantity": "1", "price": "100"}  # fmt: skip
    response = client.post(url(account, "orders"), body, format="json")
    assert_error(response, 400, "validation_error", {"client_order_id"})
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_service_and_model_refuse_identifiers_with_a_final_newline():
    from tradingstate.services import order_register

    account = AccountFactory(name="acct-nl")
    with pytest.raises(ValidationFailed) as caught:
        order_register(account=account, client_order_id="o1\n", symbol="BTC/USDT", side="buy",
                       quantity="1", price="100", actor=Actor.system("tests"))  # fmt: skip
    assert "client_order_id" in caught.value.fields
    with pytest.raises(DjangoValidationError) as refused:
        ExchangeAccount(name="acct\n", exchange="paper").full_clean()
    assert "name" in refused.value.message_dict
    with pytest.raises(ValidationFailed) as bad_bot:
        bot_create(name="bot\n", account_names=["acct-nl"], actor=Actor.system("t"), reason="t")
    assert "name" in bad_bot.value.fields


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "acct\n"), ("exchange", "paper\n"), ("api_key_env", "KEY\n")],
)
def test_config_refuses_identifiers_with_a_final_newline(field, value):
    data = {"name": "acct", "exchange": "paper", field: value}
    with pytest.raises(ValueError, match=field):
        ExchangeConfig(**data)
