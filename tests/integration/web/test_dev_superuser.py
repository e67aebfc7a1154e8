import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_dev_superuser_created_once_and_credentials_printed(settings, tmp_path):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    out = io.StringIO()
    call_command("ensure_dev_superuser", "--url", "http://127.0.0.1:8000/admin/", stdout=out)
    password = out.getvalue().split("password: ")[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)
    again = io.StringIO()
    call_command("ensure_dev_superuser", stdout=again)
    assert f"password: {password}" in again.getvalue()  # stable across runs


def test_dev_superuser_refused_outside_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("ensure_dev_superuser")
