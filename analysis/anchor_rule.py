"""Which rows are MS/MS-confirmed (anchors): a yes/no column, a score threshold, or a grade.

The native table has an Anchor column of T/F. The tools analysts export from say it in other
ways: MS-DIAL a boolean `MS/MS matched`, MZmine a count of fragment scans, LipidSearch a grade
A-D. A rule is written as text wherever users give one (`--map 'anchor_rule=>= 1'`, the API's
`mapping`, the upload page):

    yes/no      the column holds T/F, true/false, yes/no or 1/0 (the default)
    >= 80       a number at least 80 (also `> 0`; a blank score is "not confirmed")
    in A,B      one of these grades (case-insensitive; a blank grade is "not confirmed")
"""

from __future__ import annotations

import dataclasses
import re

from analysis.errors import TableError

_THRESHOLD = re.compile(r"^(?P<op>>=|≥|>)\s*(?P<value>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)$")
_GRADES = re.compile(r"^(?:in\s+|one\s+of\s+)?(?P<grades>[A-Za-z0-9]+(?:\s*[,;/ ]\s*[A-Za-z0-9]+)*)$", re.IGNORECASE)
_FLAG_WORDS = {"yes/no", "flag", "boolean", "bool", "true", "t/f"}
TRUE_TEXT = {"t", "true", "yes", "1"}
FALSE_TEXT = {"f", "false", "no", "0"}
BLANK_TEXT = {"", "null", "na", "n/a", "#n/a", "nan", "none", "-"}


@dataclasses.dataclass(frozen=True)
class AnchorRule:
    kind: str  # "flag", "threshold" or "grades"
    minimum: float | None = None
    inclusive: bool = True
    grades: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AnchorRule:
        rule = (text or "").strip()
        if not rule or rule.lower() in _FLAG_WORDS:
            return FLAG
        match = _THRESHOLD.match(rule)
        if match:
            return cls("threshold", minimum=float(match["value"]), inclusive=match["op"] != ">")
        match = _GRADES.match(rule)
        if match and not rule[:1].isdigit():
            grades = tuple(dict.fromkeys(g.upper() for g in re.split(r"[\s,;/]+", match["grades"]) if g))
            grades = tuple(g for g in grades if g not in ("IN", "ONE", "OF"))
            if grades:
                return cls("grades", grades=grades)
        raise TableError(
            f"the anchor rule {rule!r} is not one of: 'yes/no' (a T/F column), '>= NUMBER' or '> NUMBER' "
            "(a score threshold), 'in A,B' (grades)"
        )

    @property
    def text(self) -> str:
        if self.kind == "threshold":
            return f"{'>=' if self.inclusive else '>'} {self.minimum:g}"
        if self.kind == "grades":
            return "in " + ",".join(self.grades)
        return "yes/no"

    def describe(self, column: str) -> str:
        if self.kind == "threshold":
            return f"'{column}' {'≥' if self.inclusive else '>'} {self.minimum:g}"
        if self.kind == "grades":
            return f"'{column}' is {' or '.join(self.grades)}"
        return f"'{column}' is true"

    def decide(self, cell: str) -> str | None:
        """The anchor flag as text ("T"/"F") for one cell, or None when the cell does not fit the rule."""
        text = cell.strip()
        lowered = text.lower()
        if self.kind == "flag":
            return "T" if lowered in TRUE_TEXT else "F" if lowered in FALSE_TEXT else None
        if lowered in BLANK_TEXT:
            return "F"
        if self.kind == "grades":
            return "T" if text.upper() in self.grades else "F"
        try:
            value = float(text)
        except ValueError:
            return None
        if value != value:  # NaN
            return "F"
        return "T" if (value >= self.minimum if self.inclusive else value > self.minimum) else "F"

    def expected(self) -> str:
        if self.kind == "threshold":
            return "expected a number (the anchor rule compares it with a threshold) or a blank cell"
        return "expected T/F, true/false, yes/no or 1/0"


FLAG = AnchorRule("flag")
