"""Create a bot (a user with an API token and account grants) and print its token once."""

from django.core.management.base import BaseCommand, CommandError

from tradingstate.actors import Actor
from tradingstate.errors import ApplicationError
from tradingstate.services import bot_create


class Command(BaseCommand):
    help = (
        "Create the bot NAME with access to the given accounts and print its API token once. "
        "For an existing bot: issue an additional token and set its accounts to the list."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--accounts",
            required=True,
            help="Comma-separated account names the bot may use, e.g. A,B.",
        )
        parser.add_argument("--reason", default="", help="Why (recorded in the audit trail).")

    def handle(self, *args, name: str, accounts: str, reason: str, **options):
        names = [n.strip() for n in accounts.split(",") if n.strip()]
        try:
            result = bot_create(
                name=name,
                account_names=names,
                actor=Actor.system("create_bot"),
                reason=reason,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        grants = ", ".join(sorted(n for n in names)) or "(none)"
        if result.created:
            self.stdout.write(f"Created bot '{name}' with access to: {grants}")
        else:
            self.stdout.write(
                f"Bot '{name}' already exists: issued an ADDITIONAL token "
                f"(its earlier tokens stay valid; revoke them in the admin under Auth tokens). "
                f"Access now: {grants}"
            )
        self.stdout.write("API token (shown only once; store it now):")
        self.stdout.write(result.token)
        self.stdout.write(f"Use it as the header:  Authorization: Token {result.token}")
