"""Ganglioside names (science.md §3): parsing, canonical form, accepted variants and precise rejections."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import names as names_module
from analysis.names import NameParseError, ParsedName, parse_name, try_parse_name

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Canonical spelling and print order of the modifications, and the composition unit each adds.
CANONICAL_MOD_ORDER = ["dHex", "Fuc", "Hex", "HexNAc", "NeuAc", "NeuGc", "OAc"]
MOD_UNIT = {"dHex": "dhex", "Fuc": "dhex", "Hex": "hex", "HexNAc": "hexnac", "NeuAc": "neuac", "NeuGc": "neugc"}
MOD_UNIT["OAc"] = "oac"
SIALIC = {"A": 0, "M": 1, "D": 2, "T": 3, "Q": 4, "P": 5}


def _sample_names(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row["Name"] for row in csv.DictReader(handle)]


# --- the real sample -------------------------------------------------------------------------------


def test_every_porcine_name_parses_and_is_written_canonically(porcine_csv):
    names = _sample_names(porcine_csv)
    assert len(names) == 323
    for name in names:
        parsed = parse_name(name)
        assert parsed.canonical == name
        assert try_parse_name(name) == parsed
    # science.md §7: the sample has 29 prefixes (head group with modifications).
    assert len({parse_name(name).prefix for name in names}) == 29


def test_every_tiny_name_parses_with_its_isomer_letter(tiny_csv):
    names = _sample_names(tiny_csv)
    assert names == ["GD1a(36:1;O2)", "GM1a(36:1;O2)", "GM3(36:1;O2)", "GD3(36:1;O2)", "GT1b(36:1;O2)"]
    parsed = [parse_name(name) for name in names]
    assert [p.canonical for p in parsed] == names
    assert [p.isomer for p in parsed] == ["a", "a", "", "", "b"]
    assert [p.head for p in parsed] == ["GD1", "GM1", "GM3", "GD3", "GT1"]


# --- hand-checked fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "GD1(36:1;O2)",
            {"head": "GD1", "sialic": 2, "neutral": 4, "total": 6, "carbons": 36, "db": 1, "oxygen": 2, "oac": 0},
        ),
        (
            "GQ1+2OAc(36:1;O2)",
            {"head": "GQ1", "sialic": 4, "neutral": 4, "total": 8, "carbons": 36, "db": 1, "oxygen": 2, "oac": 2},
        ),
        (
            "GD1+Hex+HexNAc+OAc(36:1;O2)",
            {"head": "GD1", "sialic": 2, "neutral": 4, "total": 8, "carbons": 36, "db": 1, "oxygen": 2, "oac": 1},
        ),
        (
            "GM4(36:1;O2)",
            {"head": "GM4", "sialic": 1, "neutral": 1, "total": 2, "carbons": 36, "db": 1, "oxygen": 2, "oac": 0},
        ),
        (
            "GP1(38:1;O2)",
            {"head": "GP1", "sialic": 5, "neutral": 4, "total": 9, "carbons": 38, "db": 1, "oxygen": 2, "oac": 0},
        ),
        (
            "GA1(34:0;O3)",
            {"head": "GA1", "sialic": 0, "neutral": 4, "total": 4, "carbons": 34, "db": 0, "oxygen": 3, "oac": 0},
        ),
        (
            "GM3(42:2;O2)",
            {"head": "GM3", "sialic": 1, "neutral": 2, "total": 3, "carbons": 42, "db": 2, "oxygen": 2, "oac": 0},
        ),
    ],
)
def test_hand_checked_fields(name, expected):
    parsed = parse_name(name)
    composition = parsed.composition
    assert parsed.head == expected["head"]
    assert parsed.sialic == composition["sialic"] == expected["sialic"]
    assert parsed.neutral == composition["neutral"] == expected["neutral"]
    assert parsed.total_sugars == expected["total"]
    assert parsed.carbons == expected["carbons"]
    assert parsed.double_bonds == expected["db"]
    assert parsed.oxygen == expected["oxygen"]
    assert composition["oac"] == expected["oac"]


def test_oac_is_not_a_sugar_but_every_sugar_modification_is():
    base = parse_name("GD1(36:1;O2)").total_sugars
    assert parse_name("GD1+2OAc(36:1;O2)").total_sugars == base
    for mod in ("Hex", "HexNAc", "dHex", "Fuc", "NeuAc", "NeuGc"):
        assert parse_name(f"GD1+{mod}(36:1;O2)").total_sugars == base + 1, mod
        assert parse_name(f"GD1+2{mod}(36:1;O2)").total_sugars == base + 2, mod


def test_composition_counts_every_modification():
    parsed = parse_name("GT1+Hex+2HexNAc+dHex+NeuAc+NeuGc+3OAc(36:1;O2)")
    assert parsed.composition == {
        "sialic": 3,
        "neutral": 4,
        "hex": 1,
        "hexnac": 2,
        "dhex": 1,
        "neuac": 1,
        "neugc": 1,
        "oac": 3,
    }
    assert parsed.total_sugars == 3 + 4 + 1 + 2 + 1 + 1 + 1
    assert parsed.prefix == "GT1+dHex+Hex+2HexNAc+NeuAc+NeuGc+3OAc"


def test_fuc_counts_as_dhex_but_keeps_its_name_in_the_prefix():
    fuc = parse_name("GM1+Fuc(36:1;O2)")
    dhex = parse_name("GM1+dHex(36:1;O2)")
    assert fuc.prefix == "GM1+Fuc"
    assert fuc.canonical == "GM1+Fuc(36:1;O2)"
    assert dhex.prefix == "GM1+dHex"
    assert fuc.composition == dhex.composition
    assert fuc.composition["dhex"] == 1
    assert fuc.total_sugars == dhex.total_sugars == 6
    assert fuc != dhex
    both = parse_name("GM1+Fuc+dHex(36:1;O2)")
    assert both.composition["dhex"] == 2
    assert both.prefix == "GM1+dHex+Fuc"


@pytest.mark.parametrize(
    ("name", "head", "isomer", "alpha", "prefix", "plain"),
    [
        ("GD1a(36:1;O2)", "GD1", "a", False, "GD1a", "GD1(36:1;O2)"),
        ("GD1b(36:1;O2)", "GD1", "b", False, "GD1b", "GD1(36:1;O2)"),
        ("GQ1c(36:1;O2)", "GQ1", "c", False, "GQ1c", "GQ1(36:1;O2)"),
        ("GT1bα(36:1;O2)", "GT1", "b", True, "GT1bα", "GT1(36:1;O2)"),
        ("GT1balpha(36:1;O2)", "GT1", "b", True, "GT1bα", "GT1(36:1;O2)"),
        ("GQ1bα+OAc(36:1;O2)", "GQ1", "b", True, "GQ1bα+OAc", "GQ1+OAc(36:1;O2)"),
    ],
)
def test_isomer_letters(name, head, isomer, alpha, prefix, plain):
    parsed = parse_name(name)
    assert (parsed.head, parsed.isomer, parsed.isomer_alpha, parsed.prefix) == (head, isomer, alpha, prefix)
    # The isomer letter names a positional isomer: same composition, a different grouping key.
    without_letter = parse_name(plain)
    assert without_letter.isomer == ""
    assert not without_letter.isomer_alpha
    assert parsed.composition == without_letter.composition
    assert parsed.total_sugars == without_letter.total_sugars
    assert parsed.prefix != without_letter.prefix


# --- accepted variants -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("GD1 36:1;O2", "GD1(36:1;O2)"),
        ("GD1+OAc 36:1;O2", "GD1+OAc(36:1;O2)"),
        ("GD1a\t36:1;O2", "GD1a(36:1;O2)"),
        ("  GD1(36:1;O2)  ", "GD1(36:1;O2)"),
        ("GD1 ( 36 : 1 ; O2 )", "GD1(36:1;O2)"),
        ("GD1 + OAc + dHex (36:1;O2)", "GD1+dHex+OAc(36:1;O2)"),
        ("\tGD1 + 2OAc  36 : 1 ; O2\n", "GD1+2OAc(36:1;O2)"),
        ("GD1(36:1;2O)", "GD1(36:1;O2)"),
        ("GQ1(36:0;3O)", "GQ1(36:0;O3)"),
        ("GQ1(36:0;O3)", "GQ1(36:0;O3)"),
        ("GD1(36:1;O)", "GD1(36:1;O1)"),
        ("GD1(d18:1/18:0)", "GD1(36:1;O2)"),
        ("GD1 d18:1/18:0", "GD1(36:1;O2)"),
        ("GD1(d18:1 / 18:0)", "GD1(36:1;O2)"),
        ("GT1(t18:0/20:0)", "GT1(38:0;O3)"),
        ("GM1(m18:1/18:0)", "GM1(36:1;O1)"),
        ("GD1(d18:1/22:1)", "GD1(40:2;O2)"),
        ("GD1(18:1;O2/18:0)", "GD1(36:1;O2)"),
        ("GD1(d18:1/18:0;O)", "GD1(36:1;O3)"),
        ("GD1(d36:1)", "GD1(36:1;O2)"),
        ("GD1+OAc+OAc(36:1;O2)", "GD1+2OAc(36:1;O2)"),
        ("GD1+OAc+2OAc(36:1;O2)", "GD1+3OAc(36:1;O2)"),
        ("GD1+1OAc(36:1;O2)", "GD1+OAc(36:1;O2)"),
        ("GD1+OAc+dHex(36:1;O2)", "GD1+dHex+OAc(36:1;O2)"),
        ("GD1+OAc+HexNAc+Hex(36:1;O2)", "GD1+Hex+HexNAc+OAc(36:1;O2)"),
        ("GD1+oac(36:1;O2)", "GD1+OAc(36:1;O2)"),
        ("GD1+OAC+DHEX(36:1;O2)", "GD1+dHex+OAc(36:1;O2)"),
        ("GD1+hexnac+neugc+NEUAC(36:1;O2)", "GD1+HexNAc+NeuAc+NeuGc(36:1;O2)"),
        ("GM1+fuc(36:1;O2)", "GM1+Fuc(36:1;O2)"),
    ],
)
def test_variants_normalise_to_the_canonical_name(variant, canonical):
    parsed = parse_name(variant)
    assert parsed.canonical == canonical
    assert parsed == parse_name(canonical)


def test_repeated_modifications_are_summed_and_order_does_not_matter():
    assert parse_name("GD1+OAc+OAc(36:1;O2)") == parse_name("GD1+2OAc(36:1;O2)")
    assert parse_name("GD1+OAc+dHex(36:1;O2)") == parse_name("GD1+dHex+OAc(36:1;O2)")
    assert parse_name("GD1+OAc+dHex+OAc(36:1;O2)").mods == (("dHex", 1), ("OAc", 2))


def test_species_chains_are_summed():
    assert parse_name("GD1(d18:1/18:0)") == parse_name("GD1(36:1;O2)")
    assert parse_name("GT1(t18:0/20:0)") == parse_name("GT1(38:0;O3)")
    parsed = parse_name("GD1(d20:1/22:2)")
    assert (parsed.carbons, parsed.double_bonds, parsed.oxygen) == (42, 3, 2)


def test_non_text_is_rejected_without_a_crash():
    with pytest.raises(NameParseError, match="must be text"):
        parse_name(None)
    message = try_parse_name(float("nan"))
    assert isinstance(message, str)
    assert "must be text" in message


# --- precise rejections ----------------------------------------------------------------------------

BAD_NAMES = [
    ("GX1(36:1;O2)", "unknown sialic letter 'X'"),
    ("GD5(36:1;O2)", "unknown series '5' in 'GD5'"),
    ("GD0(36:1;O2)", "unknown series '0'"),
    ("GD12(36:1;O2)", "unknown series '12'"),
    ("GD(36:1;O2)", "missing series digit after 'GD'"),
    ("GD²(36:1;O2)", "missing series digit after 'GD'"),
    ("G(36:1;O2)", "missing sialic letter"),
    ("XD1(36:1;O2)", "head group 'XD1' must start with 'G'"),
    ("GD1d(36:1;O2)", "unknown isomer letter 'd'"),
    ("GD1A(36:1;O2)", "unexpected 'A' after head group 'GD1'"),
    ("GD1α(36:1;O2)", "unexpected 'α' after head group 'GD1'"),
    ("GD1ab(36:1;O2)", "unexpected 'b' after isomer 'GD1a'"),
    ("GD1aalph(36:1;O2)", "unexpected 'alph' after isomer 'GD1a'"),
    ("GD1+Foo(36:1;O2)", "unknown modification 'Foo'"),
    ("GD1+2Foo(36:1;O2)", "unknown modification 'Foo'"),
    ("GD1+0OAc(36:1;O2)", "modification count in '+0OAc' must be at least 1"),
    ("GD1+OAc2(36:1;O2)", "modification 'OAc2' is not of the form"),
    ("GD1+2 OAc(36:1;O2)", "modification '2 OAc' is not of the form"),
    ("GD1+11OAc(36:1;O2)", "11 × OAc is implausible"),
    ("GD1+6OAc+5OAc(36:1;O2)", "11 × OAc is implausible"),
    ("GD1+(36:1;O2)", "empty modification after '+'"),
    ("GD1++OAc(36:1;O2)", "empty modification after '+'"),
    ("+OAc(36:1;O2)", "missing head group before '+'"),
    ("GD1", "missing ceramide part"),
    ("GD1+OAc", "missing ceramide part"),
    ("GD1()", "empty ceramide part"),
    ("GD1(36:1)", "ceramide '36:1' has no oxygen count"),
    ("GD1 36:1", "ceramide '36:1' has no oxygen count"),
    ("GD1(18:1/18:0)", "ceramide '18:1/18:0' has no oxygen count"),
    ("GD1(36:1;X2)", "oxygen part ';X2'"),
    ("GD1(36:1;O2;O)", "oxygen part ';O2;O'"),
    ("GD1(d36:1;O2)", "gives the oxygen count twice"),
    ("GD1(36;1:O2)", "ceramide '36;1:O2' is not of the form"),
    ("GD1(x18:1/18:0)", "ceramide 'x18:1/18:0' is not of the form"),
    ("GD1(٣٦:1;O2)", "ceramide '٣٦:1;O2' is not of the form"),
    ("GD1(36:1;O2", "unbalanced parentheses"),
    ("GD136:1;O2)", "unbalanced parentheses"),
    ("GD1 36:1;O2)", "unbalanced parentheses"),
    ("GD1)36:1;O2(", "unbalanced parentheses"),
    ("GD1((36:1;O2))", "more than one pair of parentheses"),
    ("GD1(36:1;O2)(38:1;O2)", "more than one pair of parentheses"),
    ("GD1(36:1;O2)x", "unexpected 'x' after the ceramide part"),
    ("36:1;O2", "missing head group"),
    ("(36:1;O2)", "missing head group"),
    ("d18:1/18:0", "missing head group"),
    ("GD1(8:0;O2)", "carbon count 8 is outside 10–80"),
    ("GD1(81:1;O2)", "carbon count 81 is outside 10–80"),
    ("GD1(d40:1/42:0)", "carbon count 82 is outside 10–80"),
    ("GD1(40:13;O2)", "double-bond count 13 is outside 0–12"),
    ("GD1(12:7;O2)", "7 double bonds do not fit in 12 carbons"),
    ("GD1(d18:1/4:3)", "3 double bonds do not fit in the 4-carbon chain '4:3'"),
    ("GD1(d18:1/1:0)", "chain '1:0' in 'd18:1/1:0' has fewer than 2 carbons"),
    ("GD1(36:1;O11)", "oxygen count 11 is outside 1–10"),
    ("GD1(36:1;O0)", "oxygen count 0 is outside 1–10"),
    ("GD1(" + "9" * 5000 + ":1;O2)", "carbon count 999999… is outside 10–80"),
    ("GD1(36:1;O" + "9" * 5000 + ")", "oxygen count 999999… is outside 1–10"),
    ("GD1+" + "9" * 5000 + "OAc(36:1;O2)", "is implausible (at most 10)"),
    ("", "empty name"),
    ("   \t\n ", "empty name"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_NAMES, ids=[f"bad{i:02d}" for i in range(len(BAD_NAMES))])
def test_bad_names_are_rejected_with_the_failing_part(bad, reason):
    message = try_parse_name(bad)
    assert isinstance(message, str)
    assert reason in message
    # The message opens with the offending name, quoted (shortened when long).
    assert message.startswith('"' + bad[:20])
    assert len(message) < 400
    with pytest.raises(NameParseError) as info:
        parse_name(bad)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


# --- properties ------------------------------------------------------------------------------------

_SPACE = st.sampled_from(["", "", "", " ", "  ", "\t"])


@st.composite
def _spaced(draw, token: str) -> str:
    """A separator with optional whitespace on either side."""
    return draw(_SPACE) + token + draw(_SPACE)


@st.composite
def _modification(draw) -> tuple[str, str, int]:
    """(written text without '+', canonical name, count)."""
    mod = draw(st.sampled_from(CANONICAL_MOD_ORDER))
    spelling = draw(st.sampled_from([mod, mod, mod.lower(), mod.upper()]))
    count = draw(st.integers(1, 3))
    written_count = draw(st.sampled_from(["", str(count)])) if count == 1 else str(count)
    return written_count + spelling, mod, count


def _oxygen_text(draw, oxygen: int) -> str:
    forms = [f"O{oxygen}", f"{oxygen}O"] + (["O"] if oxygen == 1 else [])
    return draw(st.sampled_from(forms))


@st.composite
def _chain(draw) -> tuple[str, int, int, int]:
    """(written ceramide with optional whitespace, carbons, double bonds, oxygen)."""
    colon, semicolon = draw(_spaced(":")), draw(_spaced(";"))
    form = draw(st.sampled_from(["sum", "species", "species-oxygen"]))
    if form == "sum":
        carbons = draw(st.integers(10, 80))
        double_bonds = draw(st.integers(0, min(12, carbons // 2)))
        oxygen = draw(st.integers(1, 10))
        text = f"{carbons}{colon}{double_bonds}{semicolon}{_oxygen_text(draw, oxygen)}"
        return text, carbons, double_bonds, oxygen
    base_carbons = draw(st.integers(2, 40))
    acyl_carbons = draw(st.integers(max(2, 10 - base_carbons), 40))
    base_bonds = draw(st.integers(0, min(6, base_carbons // 2)))
    acyl_bonds = draw(st.integers(0, min(6, acyl_carbons // 2)))
    slash, colon2 = draw(_spaced("/")), draw(_spaced(":"))
    acyl = f"{acyl_carbons}{colon2}{acyl_bonds}"
    if form == "species":
        base_letter = draw(st.sampled_from("mdt"))
        oxygen = {"m": 1, "d": 2, "t": 3}[base_letter]
        text = f"{base_letter}{base_carbons}{colon}{base_bonds}{slash}{acyl}"
    else:
        oxygen = draw(st.integers(1, 10))
        text = f"{base_carbons}{colon}{base_bonds}{semicolon}{_oxygen_text(draw, oxygen)}{slash}{acyl}"
    return text, base_carbons + acyl_carbons, base_bonds + acyl_bonds, oxygen


@st.composite
def valid_names(draw) -> tuple[str, dict]:
    """Any name of the grammar, with the fields it must parse to."""
    letter = draw(st.sampled_from(sorted(SIALIC)))
    series = draw(st.integers(1, 4))
    isomer = draw(st.sampled_from(["", "a", "b", "c"]))
    alpha = draw(st.sampled_from(["", "alpha", "α"])) if isomer else ""
    text = draw(_SPACE) + f"G{letter}{series}{isomer}{alpha}"
    mods: dict[str, int] = {}
    for _ in range(draw(st.integers(0, 3))):
        written, mod, count = draw(_modification())
        text += draw(_spaced("+")) + written
        mods[mod] = mods.get(mod, 0) + count
    chain, carbons, double_bonds, oxygen = draw(_chain())
    if draw(st.booleans()):
        text += draw(_spaced("(")) + chain + draw(_spaced(")"))
    else:
        text += draw(st.sampled_from([" ", "  ", "\t", " \t "])) + chain + draw(_SPACE)
    expected = {
        "head": f"G{letter}{series}",
        "sialic": SIALIC[letter],
        "neutral": 5 - series,
        "isomer": isomer,
        "isomer_alpha": bool(alpha),
        "mods": tuple((mod, mods[mod]) for mod in CANONICAL_MOD_ORDER if mod in mods),
        "carbons": carbons,
        "double_bonds": double_bonds,
        "oxygen": oxygen,
    }
    return text, expected


@PROPERTY_SETTINGS
@given(valid_names())
def test_every_grammar_name_parses_to_its_fields_and_round_trips(case):
    text, expected = case
    parsed = parse_name(text)
    assert {field: getattr(parsed, field) for field in expected} == expected
    units = parsed.composition
    assert units["oac"] == dict(parsed.mods).get("OAc", 0)
    assert parsed.total_sugars == sum(units.values()) - units["oac"]
    canonical = parsed.canonical
    assert parse_name(canonical) == parsed
    assert parse_name(canonical).canonical == canonical
    assert canonical == parsed.prefix + f"({parsed.carbons}:{parsed.double_bonds};O{parsed.oxygen})"
    assert try_parse_name(text) == parsed


_EDIT_CHARACTERS = st.sampled_from(list("GAMDTQPXgadtmbc0123456789Oo+()/:;α -\t\n²٣ß")) | st.characters()


@st.composite
def mutated_names(draw) -> str:
    """A valid name with a few random character insertions, deletions or substitutions."""
    text, _ = draw(valid_names())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "substitute"]))
        if operation == "insert" or position == len(text):
            text = text[:position] + draw(_EDIT_CHARACTERS) + text[position:]
        elif operation == "delete":
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + draw(_EDIT_CHARACTERS) + text[position + 1 :]
    return text


_GRAMMAR_TEXT = st.text(alphabet=st.sampled_from(list("GAMDTQPabcdtmO0123456789+()/:;α \tHexNAcFu")), max_size=30)


def _assert_total(text: str) -> None:
    result = try_parse_name(text)
    if isinstance(result, ParsedName):
        assert parse_name(text) == result
        assert parse_name(result.canonical) == result
    else:
        assert isinstance(result, str)
        assert result.strip()
        with pytest.raises(NameParseError) as info:
            parse_name(text)
        assert str(info.value) == result


@PROPERTY_SETTINGS
@given(mutated_names())
def test_mutated_names_never_crash(text):
    _assert_total(text)


@PROPERTY_SETTINGS
@given(st.text(max_size=40) | _GRAMMAR_TEXT)
def test_arbitrary_text_never_crashes(text):
    _assert_total(text)


@given(valid_names())
def test_the_fast_path_for_canonical_names_agrees_with_the_full_parser(case):
    """Canonical spellings take a shortcut; it must give exactly what the full grammar gives."""
    name, _ = case
    canonical = parse_name(name).canonical
    fast = names_module._parse_canonical(canonical)
    assert fast is not None
    assert fast == names_module._parse(canonical)
