"""Pure domain rules: no ORM, no Django, no network. Services and the reconciler call them."""
