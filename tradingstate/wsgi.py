import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingstate.settings")
application = get_wsgi_application()

from tradingstate.web.wsgi import refuse_unusable_charsets  # noqa: E402  (needs settings)

application = refuse_unusable_charsets(application)
