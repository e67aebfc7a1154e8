"""The cross-app outer layer: URL root, health, shared API plumbing (authentication,
permissions, throttling, errors, pagination, parsers, middleware, the WSGI charset guard,
schema hooks, base views) and the admin console's plumbing.

It sits above every app and may import any of them; nothing in the state-of-record core
(models, services, selectors, exchanges, rules) imports it.
"""
