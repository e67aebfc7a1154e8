"""Row locks for the kill switch. Order: the global row first, then the account row.

Activation and deactivation take ``FOR UPDATE``; the order guard takes ``FOR SHARE`` on the
same rows (PostgreSQL), so an activation waits for in-flight registrations to commit and
every registration that starts after it commits reads the new state. Whoever finds a row
missing creates it holding no lock on the other (the guard rolls its share locks back first):
a lock held while waiting on a halt's new global row would close a cycle with that halt.
"""

from __future__ import annotations

from killswitch.models import KillSwitch


def killswitch_qs_select_for_update():
    return KillSwitch.objects.select_for_update().order_by("pk")
