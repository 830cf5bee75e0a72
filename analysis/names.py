"""Ganglioside names in the lab's dialect: parse, validate, and print in canonical form.

name  := head mods "(" chain ")"  |  head mods " " chain
head  := "G" sialic series [isomer]        GM3, GD1a, GT1b, GQ1bα
mods  := ("+" [count] mod)*                +OAc, +2OAc, +dHex, +HexNAc
chain := C ":" DB ";" oxygen               36:1;O2, 36:1;2O, d18:1/18:0, d18:1_18:0
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
MIN_CHAIN_CARBONS = 2  # each chain of a species name ("d18:1/18:0")
MAX_DIGITS = 6  # longer numbers are out of every range; never hand them to int()
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


# Digits are ASCII only: str.isdigit() and a Unicode \d also accept "²" or "٣", which either
# crash int() or silently turn foreign text into numbers.
_SPACES_AROUND = re.compile(r"\s*([:;/+()])\s*")
_SPACE_FORM = re.compile(r"^(?P<head>.*\S)\s+(?P<chain>[dtm]?[0-9]\S*)$", re.DOTALL)
_LOOKS_LIKE_CHAIN = re.compile(r"^[dtm]?[0-9]+:")
_OXYGEN = re.compile(r"^(?:O(?P<a>[0-9]*)|(?P<b>[0-9]*)O)$")
_SUM_CHAIN = re.compile(r"^(?P<base>[dtm]?)(?P<c>[0-9]+):(?P<db>[0-9]+)(?:;(?P<ox>[^/]*))?$")
_SPECIES_CHAIN = re.compile(
    r"^(?P<base>[dtm]?)(?P<c1>[0-9]+):(?P<db1>[0-9]+)(?:;(?P<ox1>[^/_]*))?"
    r"[/_](?P<c2>[0-9]+):(?P<db2>[0-9]+)(?:;(?P<ox2>[^/_]*))?$"
)
_MOD_TOKEN = re.compile(r"^(?P<count>[0-9]*)(?P<mod>[A-Za-z]+)$")
_DIGITS = "0123456789"


# Prefixes MS-DIAL puts before a name it could not confirm by MS/MS: `w/o MS2:` (MS-DIAL 4),
# `no MS2:` and `low score:` (MS-DIAL 5), `Unsettled:`. Such a row is never an anchor.
_UNCONFIRMED = re.compile(r"^\s*(?P<tag>w/o\s*MS2|no\s*MS2|low\s*score|unsettled)\s*:\s*", re.IGNORECASE)


_TAG_SPELLING = {"w/o ms2": "w/o MS2", "no ms2": "no MS2", "low score": "low score", "unsettled": "Unsettled"}


@dataclasses.dataclass(frozen=True)
class Annotation:
    """A name cell as annotation tools write it, taken apart before the name is parsed."""

    name: str  # the species name to parse
    ms1_only: bool  # an unconfirmed annotation (`w/o MS2:`, `no MS2:`, ...): never an anchor
    molecular_species: str  # what followed "|" in "species|molecular species", or ""
    tag: str = ""  # the prefix as MS-DIAL writes it, e.g. "w/o MS2", or ""


def split_annotation(text: str) -> Annotation:
    """`w/o MS2: GM3 34:1;O2|GM3 18:1;O2/16:0` -> name `GM3 34:1;O2`, unconfirmed, molecular species
    `GM3 18:1;O2/16:0` (MS-DIAL writes the sum species, then the chains it resolved)."""
    prefix = _UNCONFIRMED.match(text)
    rest = text[prefix.end() :] if prefix else text
    species, bar, molecular = rest.partition("|")
    tag = _TAG_SPELLING[" ".join(prefix["tag"].lower().replace("ms2", " ms2").split())] if prefix else ""
    return Annotation(species.strip() if bar else rest, bool(prefix), molecular.strip(), tag)


_GANGLIOSIDE_HEAD = re.compile(r"^\s*(?:NeuGc|NGc)?G[AMDTQP][1-4]", re.IGNORECASE)


def looks_like_ganglioside(name: str) -> bool:
    """Whether a name is meant as a ganglioside (GM3, GD1a, ...), right or wrong; other lipid
    classes in an annotation tool's export (PC 34:1, Cer 36:1;O2) are not."""
    return _GANGLIOSIDE_HEAD.match(name) is not None


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
    if not isinstance(text, str):
        return f"{text!r}: a name must be text"
    return _parse_cached(text)


@functools.lru_cache(maxsize=131_072)
def _parse_cached(text: str) -> ParsedName | str:
    fast = _parse_canonical(text)
    if fast is not None:
        return fast
    try:
        return _parse(text)
    except NameParseError as exc:
        return f"{_quote(text)}: {_shorten(str(exc), 240)}"


_CANONICAL = re.compile(
    r"G(?P<sialic>[AMDTQP])(?P<digit>[1-4])(?:(?P<isomer>[abc])(?P<alpha>α?))?"
    r"(?P<mods>(?:\+[2-9]?(?:dHex|Fuc|Hex|HexNAc|NeuAc|NeuGc|OAc))*)"
    r"\((?P<c>[1-9][0-9]):(?P<db>[0-9]{1,2});O(?P<ox>[1-9][0-9]?)\)"
)
_CANONICAL_MOD = re.compile(r"\+([2-9]?)([A-Za-z]+)")


def _parse_canonical(text: str) -> ParsedName | None:
    """Parse a name already in canonical spelling quickly; None sends it to the full parser.

    Most names in real tables are canonical, and this path is several times faster. Anything
    unusual (other spellings, out-of-range numbers) goes to `_parse`, which also words errors.
    """
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return None
    mods = tuple((name, int(count) if count else 1) for count, name in _CANONICAL_MOD.findall(match["mods"]))
    order = [MOD_ORDER[name] for name, _ in mods]
    if order != sorted(set(order)):
        return None
    carbons, double_bonds, oxygen = int(match["c"]), int(match["db"]), int(match["ox"])
    in_range = (
        CARBON_RANGE[0] <= carbons <= CARBON_RANGE[1]
        and DOUBLE_BOND_RANGE[0] <= double_bonds <= DOUBLE_BOND_RANGE[1]
        and OXYGEN_RANGE[0] <= oxygen <= OXYGEN_RANGE[1]
        and double_bonds <= carbons // 2
    )
    if not in_range:
        return None
    digit = int(match["digit"])
    head = f"G{match['sialic']}{digit}"
    return ParsedName(
        head,
        SIALIC_COUNTS[match["sialic"]],
        5 - digit,
        match["isomer"] or "",
        match["alpha"] == "α",
        mods,
        carbons,
        double_bonds,
        oxygen,
    )


def _quote(text: str) -> str:
    return f'"{_shorten(text, 60)}"'


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse(text: str) -> ParsedName:
    compact = _SPACES_AROUND.sub(r"\1", text.strip())
    if not compact:
        raise NameParseError("empty name")
    if "(" in compact or ")" in compact:
        open_at, close_at = compact.find("("), compact.find(")")
        if compact.count("(") != compact.count(")") or open_at < 0 or close_at < open_at:
            raise NameParseError("unbalanced parentheses; expected e.g. 'GD1(36:1;O2)'")
        if compact.count("(") > 1:
            raise NameParseError("more than one pair of parentheses; expected e.g. 'GD1(36:1;O2)'")
        if close_at != len(compact) - 1:
            raise NameParseError(
                f"unexpected '{compact[close_at + 1 :]}' after the ceramide part '{compact[: close_at + 1]}'"
            )
        head_part, chain_part = compact[:open_at], compact[open_at + 1 : close_at]
    else:
        match = _SPACE_FORM.match(compact)
        if not match:
            if _LOOKS_LIKE_CHAIN.match(compact):
                raise NameParseError("missing head group before the ceramide part; expected e.g. 'GD1(36:1;O2)'")
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
        shown = _shorten(token, 40)
        match = _MOD_TOKEN.match(token)
        if not match:
            raise NameParseError(f"modification '{shown}' is not of the form [count]name, e.g. '+2OAc'")
        mod = _MOD_BY_LOWER.get(match["mod"].lower())
        if mod is None:
            raise NameParseError(
                f"unknown modification '{_shorten(match['mod'], 40)}' (known: {', '.join(MODIFICATIONS)})"
            )
        digits = match["count"].lstrip("0") if match["count"] else "1"
        if not digits:
            raise NameParseError(f"modification count in '+{shown}' must be at least 1")
        if len(digits) > MAX_DIGITS:
            raise NameParseError(f"modification count in '+{shown}' is implausible (at most {MAX_MOD_COUNT})")
        count = int(digits)
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
    if len(token) < 3 or token[2] not in _DIGITS:
        raise NameParseError(f"missing series digit after 'G{letter}' (expected 1–4)")
    series_end = 2
    while series_end < len(token) and token[series_end] in _DIGITS:
        series_end += 1
    series = token[2:series_end]
    if series_end > 3 or int(series) not in SERIES_DIGITS:
        raise NameParseError(f"unknown series '{series}' in 'G{letter}{series}' (expected 1–4)")
    digit = int(series)
    head = f"G{letter}{digit}"
    rest = token[3:]
    isomer, alpha = "", False
    if rest:
        if rest[0] not in ISOMER_LETTERS:
            if "a" <= rest[0] <= "z" and (len(rest) == 1 or rest[1:] in ("alpha", "α")):
                raise NameParseError(f"unknown isomer letter '{rest[0]}' in '{head}{rest}' (expected a, b or c)")
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
        carbons = _number(match["c"], "carbon count", CARBON_RANGE)
        double_bonds = _number(match["db"], "double-bond count", DOUBLE_BOND_RANGE)
        oxygen = _sphingoid_oxygen(match["base"], match["ox"], part)
    else:
        match = _SPECIES_CHAIN.match(part)
        if not match:
            raise NameParseError(
                f"ceramide '{part}' is not of the form carbons:double-bonds;oxygen (e.g. 36:1;O2) "
                "or d18:1/18:0 (also d18:1_18:0)"
            )
        chains = []
        for index in ("1", "2"):
            chain_carbons = _number(match["c" + index], "carbon count", CARBON_RANGE)
            chain_bonds = _number(match["db" + index], "double-bond count", DOUBLE_BOND_RANGE)
            chain = f"{match['c' + index]}:{match['db' + index]}"
            if chain_carbons < MIN_CHAIN_CARBONS:
                raise NameParseError(f"chain '{chain}' in '{part}' has fewer than {MIN_CHAIN_CARBONS} carbons")
            if chain_bonds > chain_carbons // 2:
                raise NameParseError(
                    f"{chain_bonds} double bonds do not fit in the {chain_carbons}-carbon chain '{chain}' of '{part}'"
                )
            chains.append((chain_carbons, chain_bonds))
        carbons = chains[0][0] + chains[1][0]
        double_bonds = chains[0][1] + chains[1][1]
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
    return _number(digits, "oxygen count", OXYGEN_RANGE) if digits else 1


def _number(digits: str, what: str, bounds: tuple[int, int]) -> int:
    """An ASCII digit string as int; numbers too long to be in range are rejected before int()."""
    significant = digits.lstrip("0")
    if len(significant) > MAX_DIGITS:
        low, high = bounds
        raise NameParseError(f"{what} {significant[:MAX_DIGITS]}… is outside {low}–{high}")
    return int(digits)


def _check_range(what: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise NameParseError(f"{what} {value} is outside {low}–{high}")
