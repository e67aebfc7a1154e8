"""Create the development superuser for `make run` (DEBUG only) and print its credentials."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

CREDENTIALS_FILE = "dev_superuser.txt"


class Command(BaseCommand):
    help = "Create (once) a development superuser and print its username and password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/")

    def handle(self, *args, username: str, url: str, **options):
        if not settings.DEBUG:
            raise CommandError("ensure_dev_superuser is for development (DEBUG=1) only.")
        path = settings.DATA_DIR / CREDENTIALS_FILE
        users = get_user_model().objects
        if users.filter(username=username).exists() and path.exists():
            password = path.read_text().strip()
        else:
            password = secrets.token_urlsafe(12)
            user = users.filter(username=username).first() or users.create_user(username)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            path.write_text(password + "\n")
            path.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(f"Console: {url}  user: {username}  password: {password}")
        )
