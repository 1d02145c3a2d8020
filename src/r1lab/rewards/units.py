"""Units and other qualifiers written after an answer's value (``10\\text{ cm}``, ``5 p.m.``, ``\\$18``).

The grader compares values with the qualifier taken off. A qualifier that only restates the unit of the
question may be left out (gold ``18\\text{ dollars}``, answer ``18``), but an answer that names a
*different* unit is a different answer (gold ``10\\text{ cm}``, answer ``10 m``). ``canonical_unit`` maps the
ways of writing a unit to one name, so that ``cm``, ``centimeters`` and ``\\text{ cm}`` agree.
"""

from __future__ import annotations

import re

_ALIASES = {
    "mm": ("millimeter", "millimetre"), "cm": ("centimeter", "centimetre"), "m": ("meter", "metre"),
    "km": ("kilometer", "kilometre"), "in": ("inch",), "ft": ("foot", "feet"), "yd": ("yard", "yds"), "mi": ("mile",),
    "s": ("second", "sec"), "min": ("minute",), "h": ("hour", "hr", "hrs"), "day": (), "week": ("wk",), "year": ("yr", "yrs"),
    "mg": ("milligram",), "g": ("gram",), "kg": ("kilogram", "kgs"), "lb": ("pound", "lbs"), "oz": ("ounce",),
    "ml": ("milliliter", "millilitre"), "l": ("liter", "litre"), "dollar": ("usd", "buck"), "cent": (),
    "degree": ("deg",), "am": (), "pm": (),
}
_CANON = {alias: name for name, aliases in _ALIASES.items() for alias in (name, *aliases)}
_POWERS = {"square": "2", "sq": "2", "cubic": "3", "cu": "3"}
# a count of hundreds, millions...: part of the value, so an answer must say it too (18 is not 18 million)
MAGNITUDES = frozenset({"hundred", "thousand", "million", "billion", "trillion"})


def _singular(word: str) -> str:
    if word in _CANON or len(word) <= 3:
        return word
    if re.search(r"(?:ch|sh|x|ss)es$", word):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def canonical_unit(words: str, power: str | None = None) -> str:
    """One name for a unit however written: ``"Centimeters"`` -> ``"cm"``, ``"sq. ft"`` -> ``"ft^2"``,
    ``"p.m."`` -> ``"pm"``; ``power`` is an exponent written after it (``cm}^2``)."""
    parts = [w for w in re.split(r"[\s.]+", words.lower().replace("a.m", "am").replace("p.m", "pm")) if w]
    if parts and parts[0] in _POWERS:
        power = power or _POWERS[parts.pop(0)]
    name = " ".join(_CANON.get(_singular(w), _singular(w)) for w in parts)
    return f"{name}^{power}" if name and power and power != "1" else name


def units_conflict(pred_unit: str, gold_unit: str) -> bool:
    """True when the answer's unit contradicts the gold's. A missing unit on the answer side is no conflict
    (it restates the question's), unless the gold's qualifier is a magnitude such as "million"."""
    if not gold_unit:
        return False
    if not pred_unit:
        return any(w in MAGNITUDES for w in gold_unit.split())
    return pred_unit != gold_unit


_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")


def clock_minutes(value: str, unit: str) -> set[int] | None:
    """Minutes after midnight a time of day may stand for: ``5`` with ``pm`` -> {1020}; a bare ``5`` -> {300, 1020}
    (the question said which half of the day); a 24-hour ``17:00`` -> {1020}, ``05:00`` -> {300}. None when not
    a time."""
    m = _TIME.match(value)
    if not m:
        return None
    h, mins = int(m.group(1)), int(m.group(2) or 0)
    if h > 24 or mins > 59:
        return None
    if unit in ("am", "pm"):
        if not 1 <= h <= 12:
            return None
        return {(h % 12 + (12 if unit == "pm" else 0)) * 60 + mins}
    if 1 <= h <= 12 and not m.group(1).startswith("0"):
        return {h * 60 + mins, (h % 12 + 12) * 60 + mins}
    return {h % 24 * 60 + mins}  # 24-hour: 05:00, 17:00, 0:30
