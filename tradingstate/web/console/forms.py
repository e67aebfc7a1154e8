"""Console forms: a required reason, and the position/balance corrections.

Decimals are parsed with ``tradingstate.amounts.parse_amount_text`` (the published pattern), so a
bad number is reported against its field and nothing is written. The rules themselves (reason
required, version check, balance arithmetic) stay in the services.
"""

from __future__ import annotations

from django import forms

from tradingstate.amounts import amount_str, parse_amount_text
from tradingstate.errors import ValidationFailed
from tradingstate.models import BotProfile, PaperMarkPrice
from tradingstate.rules import values
from tradingstate.services.audit import REASON_REQUIRED, require_reason

REASON_WIDGET = forms.Textarea(attrs={"rows": 3, "cols": 60})


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=REASON_WIDGET,
        error_messages={"required": REASON_REQUIRED},
        help_text="Recorded in the audit trail with your name.",
    )

    def clean_reason(self) -> str:
        try:
            return require_reason(self.cleaned_data["reason"])
        except ValidationFailed:
            raise forms.ValidationError(REASON_REQUIRED) from None


def _amount(form: forms.Form, name: str, **rules):
    """The field's text as a Decimal (None when blank), or a form error naming the field."""
    raw = form.cleaned_data.get(name, "")
    if raw in ("", None):
        return None
    try:
        return parse_amount_text(raw.strip(), name, **rules)
    except ValidationFailed as exc:
        raise forms.ValidationError(
            f"{name}: {'; '.join(exc.fields.get(name, [exc.message]))}"
        ) from None


def amount_field(label: str, *, required: bool = False, help_text: str = "") -> forms.CharField:
    # text, not DecimalField: parse_amount_text owns the rules (18 places, no NaN, no float)
    return forms.CharField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.TextInput(attrs={"size": 30, "inputmode": "decimal", "autocomplete": "off"}),
    )


PAUSE_CHOICES = ((1, "1 hour"), (4, "4 hours"), (24, "24 hours"), (72, "3 days"))


class AutoRepairPauseFields(forms.Form):
    """When auto-repair is on, a correction is undone by the next pass: these let staff pause
    auto-repair for the account in the same step (``account_auto_repair_pause``)."""

    pause_auto_repair = forms.BooleanField(
        required=False,
        label="Pause auto-repair for this account",
        help_text="Passes still find and record every discrepancy; they repair nothing until "
        "the pause ends.",
    )
    pause_hours = forms.TypedChoiceField(
        choices=PAUSE_CHOICES, coerce=int, initial=4, required=False, label="Pause for"
    )


class PositionCorrectForm(AutoRepairPauseFields, ReasonForm):
    qty = amount_field("New quantity", required=True, help_text="Signed: long > 0, short < 0.")
    entry_price = amount_field("Entry price", help_text="Optional.")
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    field_order = ("qty", "entry_price", "reason", "pause_auto_repair", "pause_hours", "version")

    def clean_qty(self):
        return _amount(self, "qty")

    def clean_entry_price(self):
        return _amount(self, "entry_price", non_negative=True)


class BalanceCorrectForm(AutoRepairPauseFields, ReasonForm):
    free = amount_field("Free", help_text="Blank: total - used.")
    used = amount_field("Used", help_text="Blank: 0.")
    total = amount_field("Total", help_text="Blank: free + used.")
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    field_order = (
        "free", "used", "total", "reason", "pause_auto_repair", "pause_hours", "version"
    )  # fmt: skip

    def clean_free(self):
        return _amount(self, "free")

    def clean_used(self):
        return _amount(self, "used", non_negative=True)

    def clean_total(self):
        return _amount(self, "total")


class PaperMarkForm(forms.ModelForm):
    """The paper venue's mark of one symbol: price (> 0), random walk on/off, and a reason.
    Saved through ``tradingstate.services.paper.paper_mark_set`` (the admin's save_model)."""

    price = amount_field("Mark price", required=True, help_text="Greater than zero.")
    reason = ReasonForm.base_fields["reason"]

    class Meta:
        model = PaperMarkPrice
        fields = ("account", "symbol", "price", "walk")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.price is not None and not self.is_bound:
            # the stored value without its column's 18-place padding
            self.initial["price"] = amount_str(self.instance.price)

    def clean_price(self):
        return _amount(self, "price", positive=True)

    def clean_reason(self) -> str:
        return ReasonForm.clean_reason(self)

    def clean_symbol(self) -> str:
        try:
            return values.symbol(self.cleaned_data["symbol"])
        except ValidationFailed as exc:
            raise forms.ValidationError(f"symbol: {exc.message}") from None

    def clean_account(self):
        account = self.cleaned_data["account"]
        if account.exchange != "paper":
            raise forms.ValidationError(f"account: {account.name} is not a paper account")
        return account


class BotGrantsForm(forms.ModelForm):
    """The accounts a bot may use, and why they change (``services.bots.bot_grants_set``)."""

    reason = ReasonForm.base_fields["reason"]

    class Meta:
        model = BotProfile
        fields = ("accounts",)

    def clean_reason(self) -> str:
        return ReasonForm.clean_reason(self)


class PaperRowForm(forms.ModelForm):
    """A paper venue row (order, position, balance, trade) edited by staff, with a reason
    (``services.paper.paper_row_edit``)."""

    reason = ReasonForm.base_fields["reason"]

    def clean_reason(self) -> str:
        return ReasonForm.clean_reason(self)
