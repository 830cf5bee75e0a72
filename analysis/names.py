"""Ganglioside names in the lab's dialect: parse, validate, and print in canonical form.

name  := head mods "(" chain ")"  |  head mods " " chain
head  := "G" sialic series [isomer]        GM3, GD1a, GT1b, GQ1bα
mods  := ("+" [count] mod)*                +OAc, +2OAc, +dHex, +HexNAc
chain := C ":" DB ";" oxygen               36:1;O2, 36:1;2O, d18:1/18:0
"""

from __future__ import annotations

import dataclasses
import functools
import re

SIALIC_COUNTS = {"A": 0, "M": 1, "D": 2, "T": 3, "Q": 4, "P": 5}
SERIES_DIGITS = (1, 2, 3, 4)
ISOMER_LETTERS = ("a", "b", "c")

# Canonical spelling and print order of modifications; the value says which
# composition unit a modification adds (Fuc is a deoxyhexose, so it counts as dHex).
MODIFICATIONS = {
    "dHex": "dhex",
    "Fuc": "dhex",
    "Hex": "hex",
    "HexNAc": "hexnac",
    "NeuAc": "neuac",
    "NeuGc": "neugc",
    "OAc": "oac",
}
_MOD_BY_LOWER = {name.lower(): name for name in MODIFICATIONS}
MOD_ORDER = {name: i for i, name in enumerate(MODIFICATIONS)}
SUGAR_UNITS = ("hex", "hexnac", "dhex", "neuac", "neugc")
COMPOSITION_UNITS = (
    "sialic",
    "neutral",
    "hex",
    "hexnac",
    "dhex",
    "neuac",
    "neugc",
    "oac",
)

MAX_MOD_COUNT = 10
CARBON_RANGE = (10, 80)
DOUBLE_BOND_RANGE = (0, 12)
OXYGEN_RANGE = (1, 10)
SPHINGOID_OXYGENS = {"m": 1, "d": 2, "t": 3}


class NameParseError(ValueError):
    """A name that does not follow the grammar; the message names the failing part."""


@dataclasses.dataclass(frozen=True)
class ParsedName:
    head: str  # head group without isomer letter, e.g. "GD1"
    sialic: int
    neutral: int
    isomer: str  # "", "a", "b" or "c"
    isomer_alpha: bool
    mods: tuple[tuple[str, int], ...]  # canonical spelling and order
    carbons: int
    double_bonds: int
    oxygen: int

    @property
    def prefix(self) -> str:
        """Head group with isomer letter and modifications: the grouping key users see."""
        text = self.head + self.isomer + ("α" if self.isomer_alpha else "")
        for mod, count in self.mods:
            text += f"+{count if count > 1 else ''}{mod}"
        return text

    @property
    def chain(self) -> str:
        return f"{self.carbons}:{self.double_bonds};O{self.oxygen}"

    @property
    def canonical(self) -> str:
        return f"{self.prefix}({self.chain})"

    @property
    def composition(self) -> dict[str, int]:
        """Counts of every unit that makes up the glycan part (sugars and O-acetyl groups)."""
        units = dict.fromkeys(COMPOSITION_UNITS, 0)
        units["sialic"] = self.sialic
        units["neutral"] = self.neutral
        for mod, count in self.mods:
            units[MODIFICATIONS[mod]] += count
        return units

    @property
    def total_sugars(self) -> int:
        units = self.composition
        return units["sialic"] + units["neutral"] + sum(units[u] for u in SUGAR_UNITS)


_SPACES_AROUND = re.compile(r"\s*([:;/+()])\s*")
_SPACE_FORM = re.compile(r"^(?P<head>.*\S)\s+(?P<chain>[dtm]?\d\S*)$")
_OXYGEN = re.compile(r"^(?:O(?P<a>\d*)|(?P<b>\d*)O)$")
_SUM_CHAIN = re.compile(r"^(?P<base>[dtm]?)(?P<c>\d+):(?P<db>\d+)(?:;(?P<ox>[^/]*))?$")
_SPECIES_CHAIN = re.compile(
    r"^(?P<base>[dtm]?)(?P<c1>\d+):(?P<db1>\d+)(?:;(?P<ox1>[^/]*))?"
    r"/(?P<c2>\d+):(?P<db2>\d+)(?:;(?P<ox2>[^/]*))?$"
)
_MOD_TOKEN = re.compile(r"^(?P<count>\d*)(?P<mod>[A-Za-z]+)$")


def parse_name(text: object) -> ParsedName:
    """Parse one name; raise NameParseError with a message that says which part failed."""
    if not isinstance(text, str):
        raise NameParseError(f"{text!r}: a name must be text")
    result = _parse_cached(text)
    if isinstance(result, str):
        raise NameParseError(result)
    return result


def try_parse_name(text: str) -> ParsedName | str:
    """Parse one name; return the ParsedName or the error message (no exception)."""
    return _parse_cached(text)


@functools.lru_cache(maxsize=131_072)
def _parse_cached(text: str) -> ParsedName | str:
    try:
        return _parse(text)
    except NameParseError as exc:
        return f"{_quote(text)}: {exc}"


def _quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f'"{shown}"'


def _parse(text: str) -> ParsedName:
    compact = _SPACES_AROUND.sub(r"\1", text.strip())
    if not compact:
        raise NameParseError("empty name")
    if "(" in compact or ")" in compact:
        open_at = compact.find("(")
        if open_at < 0 or not compact.endswith(")") or compact.count("(") != 1 or compact.count(")") != 1:
            raise NameParseError("unbalanced parentheses; expected e.g. 'GD1(36:1;O2)'")
        head_part, chain_part = compact[:open_at], compact[open_at + 1 : -1]
    else:
        match = _SPACE_FORM.match(compact)
        if not match:
            raise NameParseError("missing ceramide part; expected e.g. 'GD1(36:1;O2)' or 'GD1 36:1;O2'")
        head_part, chain_part = match["head"], match["chain"]
    if not head_part:
        raise NameParseError("missing head group before the ceramide part")
    head, sialic, neutral, isomer, alpha, mods = _parse_head_and_mods(head_part)
    carbons, double_bonds, oxygen = _parse_chain(chain_part)
    return ParsedName(head, sialic, neutral, isomer, alpha, mods, carbons, double_bonds, oxygen)


def _parse_head_and_mods(part: str):
    tokens = part.split("+")
    head_token, mod_tokens = tokens[0], tokens[1:]
    head, sialic, neutral, isomer, alpha = _parse_head(head_token)
    counts: dict[str, int] = {}
    for token in mod_tokens:
        if not token:
            raise NameParseError("empty modification after '+'")
        match = _MOD_TOKEN.match(token)
        if not match:
            raise NameParseError(f"modification '{token}' is not of the form [count]name, e.g. '+2OAc'")
        mod = _MOD_BY_LOWER.get(match["mod"].lower())
        if mod is None:
            raise NameParseError(f"unknown modification '{match['mod']}' (known: {', '.join(MODIFICATIONS)})")
        count = int(match["count"]) if match["count"] else 1
        if count < 1:
            raise NameParseError(f"modification count in '+{token}' must be at least 1")
        counts[mod] = counts.get(mod, 0) + count
        if counts[mod] > MAX_MOD_COUNT:
            raise NameParseError(f"{counts[mod]} × {mod} is implausible (at most {MAX_MOD_COUNT})")
    mods = tuple(sorted(counts.items(), key=lambda item: MOD_ORDER[item[0]]))
    return head, sialic, neutral, isomer, alpha, mods


def _parse_head(token: str):
    if not token:
        raise NameParseError("missing head group before '+'")
    if token[0] not in "Gg":
        raise NameParseError(f"head group '{token}' must start with 'G' (e.g. GM1, GD1a)")
    if len(token) < 2:
        raise NameParseError("missing sialic letter after 'G' (one of A, M, D, T, Q, P)")
    letter = token[1].upper()
    if letter not in SIALIC_COUNTS:
        raise NameParseError(f"unknown sialic letter '{token[1]}' (expected one of A, M, D, T, Q, P)")
    if len(token) < 3 or not token[2].isdigit():
        raise NameParseError(f"missing series digit after 'G{letter}' (expected 1–4)")
    digit = int(token[2])
    if digit not in SERIES_DIGITS:
        raise NameParseError(f"unknown series '{token[2]}' in 'G{letter}{token[2]}' (expected 1–4)")
    head = f"G{letter}{digit}"
    rest = token[3:]
    isomer, alpha = "", False
    if rest:
        if rest[0] not in ISOMER_LETTERS:
            raise NameParseError(
                f"unexpected '{rest}' after head group '{head}' (an isomer letter a, b or c may follow)"
            )
        isomer, tail = rest[0], rest[1:]
        if tail in ("alpha", "α"):
            alpha = True
        elif tail:
            raise NameParseError(f"unexpected '{tail}' after isomer '{head}{isomer}' (only 'alpha' or 'α' may follow)")
    return head, SIALIC_COUNTS[letter], 5 - digit, isomer, alpha


def _parse_chain(part: str) -> tuple[int, int, int]:
    if not part:
        raise NameParseError("empty ceramide part; expected e.g. '36:1;O2'")
    match = _SUM_CHAIN.match(part)
    if match:
        carbons, double_bonds = int(match["c"]), int(match["db"])
        oxygen = _sphingoid_oxygen(match["base"], match["ox"], part)
    else:
        match = _SPECIES_CHAIN.match(part)
        if not match:
            raise NameParseError(
                f"ceramide '{part}' is not of the form carbons:double-bonds;oxygen (e.g. 36:1;O2) or d18:1/18:0"
            )
        carbons = int(match["c1"]) + int(match["c2"])
        double_bonds = int(match["db1"]) + int(match["db2"])
        oxygen = _sphingoid_oxygen(match["base"], match["ox1"], part)
        if match["ox2"] is not None:
            oxygen += _oxygen_count(match["ox2"], part)
    _check_range("carbon count", carbons, CARBON_RANGE)
    _check_range("double-bond count", double_bonds, DOUBLE_BOND_RANGE)
    _check_range("oxygen count", oxygen, OXYGEN_RANGE)
    if double_bonds > carbons // 2:
        raise NameParseError(f"{double_bonds} double bonds do not fit in {carbons} carbons")
    return carbons, double_bonds, oxygen


def _sphingoid_oxygen(base: str, oxygen: str | None, part: str) -> int:
    if base and oxygen is not None:
        raise NameParseError(f"ceramide '{part}' gives the oxygen count twice ('{base}' and ';{oxygen}')")
    if base:
        return SPHINGOID_OXYGENS[base]
    if oxygen is None:
        raise NameParseError(f"ceramide '{part}' has no oxygen count; expected e.g. '36:1;O2'")
    return _oxygen_count(oxygen, part)


def _oxygen_count(text: str, part: str) -> int:
    match = _OXYGEN.match(text)
    if not match:
        raise NameParseError(f"oxygen part ';{text}' in '{part}' is not of the form O2, 2O or O")
    digits = match["a"] if match["a"] is not None else match["b"]
    return int(digits) if digits else 1


def _check_range(what: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise NameParseError(f"{what} {value} is outside {low}–{high}")
