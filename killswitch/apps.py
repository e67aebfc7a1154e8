from django.apps import AppConfig
from django.db.models.signals import post_save


class KillswitchConfig(AppConfig):
    name = "killswitch"
    verbose_name = "Kill switch"

    def ready(self) -> None:
        # Every account has its kill-switch row from the moment it exists (issue 13, D1):
        # the order guard's FOR SHARE then always waits on an existing row, so an account's
        # first halt cannot slip past a registration whose snapshot predates the row. The
        # core (tradingstate) may not import killswitch, and accounts are created from many
        # places (account_upsert, the admin, recover, fixtures), so this one receiver is the
        # single place that keeps the invariant; it calls the service and holds no logic.
        from tradingstate.models import ExchangeAccount

        post_save.connect(
            _account_saved, sender=ExchangeAccount, dispatch_uid="killswitch_row_for_account"
        )


def _account_saved(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from killswitch.services import killswitch_row_ensure

        killswitch_row_ensure(account=instance)
