from tests.integration.console_support import demo, reconciled  # noqa: F401
