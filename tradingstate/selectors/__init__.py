"""Reads of the state of record (HackSoft's selectors): views, admin and other apps read
through these, never through ad-hoc querysets. One module per area; this package
re-exports them."""

from tradingstate.selectors.books import balance_list, fill_list, fills_of_order, position_list
from tradingstate.selectors.orders import (
    order_get,
    order_list,
    order_rows_named,
)
from tradingstate.selectors.paper import paper_trade_list

__all__ = [
    "balance_list",
    "fill_list",
    "fills_of_order",
    "order_get",
    "order_list",
    "order_rows_named",
    "paper_trade_list",
    "position_list",
]
