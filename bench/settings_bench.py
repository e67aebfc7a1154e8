"""Settings for the API bench only: the product's settings plus a bare JSON view (the
ceiling), plain HTTP on loopback, and a bot rate limit high enough not to refuse the load
(the throttle still runs and counts in the cache on every request)."""

from tradingstate.settings import *  # noqa: F403
from tradingstate.settings import REST_FRAMEWORK

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
SECURE_SSL_REDIRECT = False
ROOT_URLCONF = "bench.urls_bench"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"bot": "100000000/min"}}
