"""Admin console plumbing: small forms (value + reason) and the intermediate reason page that
admin actions share. Every write still goes through a service; these only collect input."""
