from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from tradingstate.models import Balance, BotProfile, ExchangeAccount, Order, Position


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeAccount
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"acct-{n}")
    exchange = "paper"
    market_type = "swap"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True
    username = factory.Sequence(lambda n: f"staff{n}")


class BotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BotProfile

    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"bot{n}"))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    account = factory.SubFactory(AccountFactory)
    client_order_id = factory.Sequence(lambda n: f"coid-{n}")
    symbol = "BTC/USDT"
    side = "buy"
    type = "limit"
    quantity = Decimal("1")
    price = Decimal("50000")
    remaining_qty = factory.LazyAttribute(lambda o: o.quantity - o.filled_qty)
    filled_qty = Decimal("0")
    status = "pending"


class PositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Position

    account = factory.SubFactory(AccountFactory)
    symbol = "BTC/USDT"
    qty = Decimal("0")


class BalanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Balance

    account = factory.SubFactory(AccountFactory)
    currency = "USDT"
    used = Decimal("0")
    total = Decimal("0")
    # consistent by default (issue 13: free + used = total is a database CHECK)
    free = factory.LazyAttribute(lambda o: o.total - o.used)
