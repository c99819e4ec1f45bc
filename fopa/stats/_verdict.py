"""Verdicts: what a measurement says of a claim, by a rule written next to it."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["VERDICTS", "Verdict", "sign_verdict"]

#: Every verdict fopa's reports give.
VERDICTS = ("agrees", "disagrees", "inconclusive", "not tested")


@dataclass(frozen=True)
class Verdict:
    """The verdict of one measurement on one claim.

    Attributes
    ----------
    outcome : str
        One of :data:`VERDICTS`.
    rule : str
        The rule that decided it, in words (printed next to the verdict).
    reason : str
        What the rule saw in the data: the numbers that decided it.
    """

    outcome: str
    rule: str
    reason: str

    def __post_init__(self):
        if self.outcome not in VERDICTS:
            raise ValueError(f"outcome must be one of {', '.join(VERDICTS)}; got {self.outcome!r}")

    def to_dict(self) -> dict:
        """``{"outcome", "rule", "reason"}``."""
        return dict(outcome=self.outcome, rule=self.rule, reason=self.reason)


def sign_verdict(interval, *, expected, what, rule=None) -> Verdict:
    """``agrees`` if ``interval`` lies wholly on the ``expected`` side of 0,
    ``disagrees`` if wholly on the other, ``inconclusive`` if it contains 0.

    Parameters
    ----------
    interval : Interval or None
        The measured statistic's interval (None: not measured -> ``not tested``).
    expected : {"positive", "negative"}
        The sign the claim predicts.
    what : str
        The statistic's name, for the reason.
    rule : str, optional
        The rule's text (default: the rule above in words).
    """
    if expected not in ("positive", "negative"):
        raise ValueError(f"expected must be 'positive' or 'negative'; got {expected!r}")
    other = "negative" if expected == "positive" else "positive"
    if rule is None:
        rule = (f"agrees if the {interval.level if interval else 0.95:.0%} interval of the "
                f"{what} is {expected}, disagrees if it is {other}, else inconclusive")  # fmt: skip
    if interval is None:
        return Verdict("not tested", rule, f"the {what} could not be measured")
    low, high = interval.low, interval.high
    text = f"{what} {interval.estimate:.3g} [{low:.3g}, {high:.3g}]"
    if math.isnan(low) or math.isnan(high):
        return Verdict("inconclusive", rule, f"{text}: no interval")
    above, below = low > 0, high < 0
    if (above and expected == "positive") or (below and expected == "negative"):
        return Verdict("agrees", rule, text)
    if above or below:
        return Verdict("disagrees", rule, text)
    return Verdict("inconclusive", rule, f"{text} contains 0")
