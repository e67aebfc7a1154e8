"""The kill-switch read against the bare view, for bench/ab.sh: ``api.py``'s gunicorn and
load generator from the tree given (so the tree's own code serves), 15 s each."""

from __future__ import annotations

import os
import sys

root = sys.argv[1]
sys.path[:0] = [os.path.join(root, "bench"), root]

import api  # noqa: E402
from common import bench_database, django_setup  # noqa: E402

with bench_database():
    os.environ["DJANGO_SETTINGS_MODULE"] = api.SETTINGS
    django_setup(api.SETTINGS)
    token = api.make_bot()
    from django.db import connections

    connections.close_all()
    port = api.free_port()
    with api.gunicorn(port):
        base = api.load(port, "/bench/bare/", "get", token, 32, 15)
        ks = api.load(port, "/api/v1/killswitch/", "get", token, 32, 15)
    print(
        f"api endpoint=killswitch rps={ks['rps']:.0f} p50_ms={ks['p50_ms']:.1f} "
        f"p99_ms={ks['p99_ms']:.1f} baseline_rps={base['rps']:.0f} "
        f"ratio={ks['rps'] / base['rps']:.2f}"
    )
