"""The global switch row always exists, so the order guard's FOR SHARE has a row to lock."""

from django.db import migrations


def create_global_row(apps, schema_editor):
    KillSwitch = apps.get_model("killswitch", "KillSwitch")
    KillSwitch.objects.using(schema_editor.connection.alias).get_or_create(account=None)


class Migration(migrations.Migration):
    dependencies = [("killswitch", "0001_initial")]

    operations = [migrations.RunPython(create_global_row, migrations.RunPython.noop)]
