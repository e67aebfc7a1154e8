"""The class of bug "an amount computed in the ambient decimal context".

Python's default context keeps 28 digits, and ccxt's ``decimal_to_precision`` rewrites the
calling thread's context (rounding half-up, underflow trapped) for good. A stored amount has
38 digits and a computed figure (a notional) more, so product code must never lean on the
ambient context: it computes in ``amounts.CONTEXT``, either inside
``localcontext(CONTEXT)`` or by passing ``context=``.

Two guards: a static one over every context-dependent Decimal method in the product's code,
and a run of the formatting and amount functions under a hostile ambient context."""

from __future__ import annotations

import ast
from decimal import ROUND_DOWN, Context, Decimal, Inexact, InvalidOperation, Rounded, localcontext
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("tradingstate", "reconciliation", "killswitch", "scripts")

# Decimal methods whose result depends on the context (they round, or refuse a result longer
# than the context's precision); arithmetic operators can't be told from other numbers'.
CONTEXT_METHODS = {
    "quantize",
    "normalize",
    "scaleb",
    "sqrt",
    "exp",
    "ln",
    "log10",
    "fma",
    "to_integral_exact",
}


def _is_small_literal(node: ast.expr) -> bool:
    """``Decimal(1)`` / ``Decimal("0.01")``: a receiver of a few digits is exact anywhere."""
    return (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Decimal"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and len(str(node.args[0].value)) <= 6
    )


def _opens_a_context(node: ast.With | ast.AsyncWith) -> bool:
    return any(
        isinstance(item.context_expr, ast.Call)
        and getattr(item.context_expr.func, "id", getattr(item.context_expr.func, "attr", ""))
        == "localcontext"
        and item.context_expr.args  # localcontext(CONTEXT), not a copy of the ambient one
        for item in node.items
    )


def ambient_calls(source: str) -> list[tuple[int, str]]:
    """The context-dependent Decimal calls in ``source`` that run in the ambient context."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, covered: bool) -> None:
        if isinstance(node, ast.With | ast.AsyncWith) and _opens_a_context(node):
            covered = True
        if (
            not covered
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CONTEXT_METHODS
            and not any(k.arg == "context" for k in node.keywords)
            # normalize(ctx) takes the context positionally
            and not (node.func.attr == "normalize" and node.args)
            and not _is_small_literal(node.func.value)
        ):
            found.append((node.lineno, ast.unparse(node)))
        for child in ast.iter_child_nodes(node):
            visit(child, covered)

    visit(ast.parse(source), False)
    return found


def test_the_lint_finds_an_ambient_quantize_and_passes_a_covered_one():
    source = (
        "from decimal import localcontext\n"
        "a = value.quantize(Q)\n"  # flagged
        "b = value.quantize(Q, context=CONTEXT)\n"
        "c = value.normalize(CONTEXT)\n"
        "d = Decimal(1).scaleb(-places)\n"
        "with localcontext(CONTEXT):\n"
        "    e = value.quantize(Q)\n"
        "with localcontext() as ctx:\n"
        "    f = value.normalize()\n"  # flagged: a copy of the ambient context
    )
    assert [line for line, _ in ambient_calls(source)] == [2, 9]


def test_no_product_code_rounds_in_the_ambient_context():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for line, text in ambient_calls(path.read_text())
    ]
    assert offenders == [], "compute in amounts.CONTEXT:\n" + "\n".join(offenders)


BIG = Decimal("12345678901234567890.123456789012345678")  # a stored amount: 38 digits


@pytest.fixture
def hostile_context():
    """A caller's context as bad as it gets: few digits, truncating, and any rounding trapped."""
    with localcontext(
        Context(prec=6, rounding=ROUND_DOWN, traps=[InvalidOperation, Inexact, Rounded])
    ):
        yield


@pytest.mark.usefixtures("hostile_context")
def test_amount_functions_are_exact_whatever_the_ambient_context():
    from tradingstate.amounts import amount_display, amount_str, parse_amount, quantize_amount

    assert amount_str(BIG) == str(BIG)
    assert parse_amount(str(BIG), "quantity") == BIG
    assert quantize_amount(BIG) == BIG
    # a stored quantity of 20 + 18 digits shown to its instrument's step
    assert amount_display(BIG, Decimal("0.001")) == str(BIG)
    assert amount_display(Decimal("12345678901234567890"), Decimal("0.000000000000000001")) == (
        "12345678901234567890.000000000000000000"
    )


@pytest.mark.usefixtures("hostile_context")
def test_console_filters_show_figures_past_28_digits():
    from tradingstate.templatetags.money import money, qty

    notional = Decimal("152415787532388367504953515625361987875.05")  # qty x price: 41 digits
    assert ">152415787532388367504953515625361987875.05<" in money(notional)
    assert f">{BIG}<" in qty(BIG, "0.01")
