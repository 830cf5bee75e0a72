"""The exports of the tools analysts already use, recognised by their headers.

Each layout says where a table of its kind keeps the name, the retention time, the volume (one
column, or one per sample) and what makes a row MS/MS-confirmed. The layouts follow the tools'
own export code (docs/inputs.md lists the versions and the columns read):

- MS-DIAL 4/5 alignment result (file-metadata rows above the header, one column per sample
  file, class averages and standard deviations at the end) and single-file peak list;
- MZmine 3/4 modular CSV (`datafile:<file>:area` per sample) and MZmine 2 legacy CSV
  (`<file> Peak area` per sample);
- LipidSearch 4.2 (`#` declarations, `Area[c-1]`, `Rt[c-1]`, `Grade[c-1]` per sample) and 5.x
  (`LipidMolec`/`LipidID`, `BaseRt`, `MeanArea[s1]`/`OrgMeanArea[s1]`, `TotalGrade`);
- Skyline reports, long (one row per molecule and replicate, perhaps per transition) or
  pivoted by replicate (`<replicate> Area`, `<replicate> Retention Time`).

`plan_for(header, preamble)` gives a `Plan` for a recognised header, or None. The reader then
derives the analysis fields of every row from it (`Plan.derive`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from analysis.anchor_rule import BLANK_TEXT, FLAG, AnchorRule

Source = int | dict[str, int] | None  # one column, or one column per sample (sample -> position)
MEAN = "mean"


def key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclasses.dataclass
class Plan:
    """Where one recognised table keeps each field."""

    layout: str  # key, e.g. "msdial_alignment"
    label: str  # as users know it, e.g. "MS-DIAL alignment export"
    name: list[int]  # candidate columns: the first non-blank one in a row is the name
    rt: Source
    volume: Source
    anchor: Source
    anchor_rule: AnchorRule = FLAG
    log_p: int | None = None
    samples: list[str] = dataclasses.field(default_factory=list)  # every sample column, in file order
    mean_of: list[str] | None = None  # the samples the mean is over (None: all of them)
    skip_rows: Callable[[list[str]], str | None] | None = None  # a tool's own "rejected" mark -> reason
    clean_name: Callable[[str], str] | None = None  # e.g. LipidSearch's adduct suffix
    renamed: dict[int, str] = dataclasses.field(default_factory=dict)  # unique output names for kept columns
    long_format: tuple[list[int], int] | None = None  # (molecule key columns, replicate column)
    sum_volume: bool = False  # long format: add the rows of a molecule and replicate (transitions)
    notes: list[str] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------- helpers


def _find(index: dict[str, int], *names: str) -> int | None:
    for name in names:
        if key(name) in index:
            return index[key(name)]
    return None


def _index(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for position, cell in enumerate(header):
        found.setdefault(key(cell), position)
    return found


def _bracketed(header: list[str], measure: str) -> dict[str, int]:
    """LipidSearch's `Measure[key]` columns: key -> position."""
    pattern = re.compile(rf"^{re.escape(measure)}\[(?P<key>[^\]]+)\]$", re.IGNORECASE)
    return {m["key"]: i for i, cell in enumerate(header) if (m := pattern.match(cell.strip()))}


def _suffixed(header: list[str], *suffixes: str) -> dict[str, int]:
    """`<sample> <measure>` columns (MZmine 2, pivoted Skyline): sample -> position, first suffix that matches."""
    for suffix in suffixes:
        found = {
            cell[: -len(suffix)].strip(): i
            for i, cell in enumerate(header)
            if cell.lower().endswith(" " + suffix.lower()) and cell[: -len(suffix)].strip()
        }
        if found:
            return found
    return {}


_ADDUCT = re.compile(r"(?<=\))\s*[+-][A-Za-z0-9+\-]*$")


def strip_adduct(name: str) -> str:
    """`GM3(d18:1/18:0)-H` -> `GM3(d18:1/18:0)` (LipidSearch writes the ion after the lipid)."""
    return _ADDUCT.sub("", name)


# ---------------------------------------------------------------- MS-DIAL

MSDIAL_LAST_METADATA = "MS/MS spectrum"
MSDIAL_FILE_LABELS = ("Class", "File type", "Injection order", "Batch ID")


def _msdial_alignment(header: list[str], preamble: list[list[str]]) -> Plan | None:
    index = _index(header)
    if not {"alignmentid", "metabolitename"} <= index.keys():
        return None
    last_meta = index.get(key(MSDIAL_LAST_METADATA))
    if last_meta is None:  # an unusual export: samples are the columns after the last known metadata column
        last_meta = max(
            index[k] for k in ("alignmentid", "averagertmin", "metabolitename", "msmsmatched") if k in index
        )
    labels = {}
    for row in preamble:
        if len(row) > last_meta and row[last_meta].strip() and not any(c.strip() for c in row[:last_meta]):
            labels[row[last_meta].strip().lower()] = row
    file_type = labels.get("file type")
    renamed: dict[int, str] = {}
    samples: dict[str, int] = {}
    stats_label = labels.get("batch id")
    for position in range(last_meta + 1, len(header)):
        name = header[position].strip()
        if not name:
            continue
        if file_type is not None:
            kind = file_type[position].strip() if position < len(file_type) else ""
            if kind.upper() == "NA" or not kind:  # a class statistic (Average / Stdev of a class)
                stat = stats_label[position].strip() if stats_label and position < len(stats_label) else "statistic"
                renamed[position] = f"{stat} {name}"
                continue
        elif name in samples:  # no metadata rows: the repeated class names begin the statistics
            break
        samples[name] = position
    plan = Plan(
        layout="msdial_alignment",
        label="MS-DIAL alignment export",
        name=[index["metabolitename"]],
        rt=index.get("averagertmin"),
        volume=samples or None,
        anchor=index.get("msmsmatched"),
        samples=list(samples),
        renamed=renamed,
    )
    if file_type is not None:
        measured = [s for s, p in samples.items() if p < len(file_type) and file_type[p].strip().lower() == "sample"]
        if measured and len(measured) < len(samples):
            plan.mean_of = measured
            others = sorted({file_type[p].strip() for s, p in samples.items() if s not in measured})
            plan.notes.append(
                f"the mean is over the {len(measured)} files of type Sample ({', '.join(others)} files left out)"
            )
    elif samples:
        plan.notes.append("no file-metadata rows above the header: every column after the metadata is a sample")
    return plan


def _msdial_peaklist(header: list[str], _preamble) -> Plan | None:
    index = _index(header)
    if (
        "rtmin" not in index
        or not ({"peakid"} <= index.keys())
        or not ({"title", "name", "metabolitename"} & index.keys())
    ):
        return None
    return Plan(
        layout="msdial_peaklist",
        label="MS-DIAL peak list",
        name=[_find(index, "Title", "Name", "Metabolite name")],
        rt=index["rtmin"],
        volume=_find(index, "Area", "Height"),
        anchor=_find(index, "MS/MS matched", "MSMS matched"),
    )


# ---------------------------------------------------------------- MZmine

MZMINE_NAME_COLUMNS = (
    "preferred_annotation:compound_name",
    "compound_db_identity:compound_name",
    "lipid_annotations:lipid_annotations",
    "spectral_db_matches:compound_name",
)


def _mzmine_modular(header: list[str], _preamble) -> Plan | None:
    exact = {cell.strip(): i for i, cell in enumerate(header)}
    if not {"id", "rt"} <= exact.keys() or not any(":" in cell for cell in exact):
        return None
    samples = {
        cell[len("datafile:") : -len(":area")]: i
        for cell, i in exact.items()
        if cell.startswith("datafile:") and cell.endswith(":area")
    }
    names = [exact[c] for c in MZMINE_NAME_COLUMNS if c in exact]
    plan = Plan(
        layout="mzmine_modular",
        label="MZmine 3/4 feature list (modular CSV)",
        name=names,
        rt=exact["rt"],
        volume=samples or exact.get("area"),
        anchor=exact.get("fragment_scans"),
        anchor_rule=AnchorRule("threshold", minimum=1),
        samples=list(samples),
    )
    plan.notes.append("a row is MS/MS-confirmed when it is annotated and has at least one fragment scan")
    return plan


def _mzmine_legacy(header: list[str], _preamble) -> Plan | None:
    index = _index(header)
    if not {"rowid", "rowretentiontime"} <= index.keys():
        return None
    samples = _suffixed(header, "Peak area")
    return Plan(
        layout="mzmine_legacy",
        label="MZmine 2 legacy CSV",
        name=[i for i in (_find(index, "row identity (main ID)"), _find(index, "row identity")) if i is not None],
        rt=index["rowretentiontime"],
        volume=samples or None,
        anchor=None,  # MZmine 2 writes nothing that says MS/MS: the user picks a column
        samples=list(samples),
    )


# ---------------------------------------------------------------- LipidSearch


def _lipidsearch_rejected(column: int | None):
    if column is None:
        return None

    def rejected(record: list[str]) -> str | None:
        value = record[column].strip().lower() if column < len(record) else ""
        return "rejected in LipidSearch (Rej.)" if value in ("1", "true") else None

    return rejected


def _lipidsearch(header: list[str], _preamble) -> Plan | None:
    index = _index(header)
    name = _find(index, "LipidMolec", "LipidGroup", "LipidID", "LipidIon")
    if name is None:
        return None
    base_rt = _find(index, "BaseRt")
    rt_per_sample = _bracketed(header, "Rt") or _bracketed(header, "ObsRt")
    if base_rt is None and not rt_per_sample:
        return None
    volume: Source = None
    for measure in ("MeanArea", "OrgMeanArea", "Area"):
        volume = _bracketed(header, measure)
        if volume:
            break
    total_grade = _find(index, "TotalGrade")
    grades = _bracketed(header, "Grade")
    version = "5.x" if base_rt is not None else "4.2"
    written = header[name]
    plan = Plan(
        layout="lipidsearch",
        label=f"LipidSearch {version} export",
        name=[name],
        rt=base_rt if base_rt is not None else rt_per_sample,
        volume=volume or None,
        anchor=total_grade if total_grade is not None else (grades or None),
        anchor_rule=AnchorRule("grades", grades=("A", "B")),
        samples=list(volume or {}),
        skip_rows=_lipidsearch_rejected(_find(index, "Rej.", "Rej")),
        clean_name=strip_adduct if key(written) in ("lipidid", "lipidion") else None,
    )
    if plan.clean_name:
        plan.notes.append(f"the ion written after each name in '{written}' (e.g. '+H', '-H') is removed")
    return plan


# ---------------------------------------------------------------- Skyline

SKYLINE_NAMES = ("Molecule Name", "Molecule", "Peptide Name", "Peptide", "Precursor Ion Name")
SKYLINE_RT = ("Retention Time", "Best Retention Time", "Molecule Retention Time", "Peptide Retention Time")
SKYLINE_AREA = ("Total Area", "Total Area MS1", "Area")


def _skyline(header: list[str], _preamble) -> Plan | None:
    index = _index(header)
    name = _find(index, *SKYLINE_NAMES)
    if name is None:
        return None
    replicate = _find(index, "Replicate Name", "Replicate")
    if replicate is not None:
        rt, area = _find(index, *SKYLINE_RT), _find(index, *SKYLINE_AREA)
        if rt is None or area is None:
            return None
        keys = [name] + [i for i in (_find(index, "Precursor Mz"), _find(index, "Precursor Adduct")) if i is not None]
        transitions = key(header[area]) == "area" and _find(index, "Product Mz", "Fragment Ion") is not None
        plan = Plan(
            layout="skyline_long",
            label="Skyline report (one row per replicate)",
            name=[name],
            rt=rt,
            volume=area,
            anchor=None,
            long_format=(keys, replicate),
            sum_volume=transitions,
        )
        if transitions:
            plan.notes.append("the transitions of a molecule in a replicate are added up (their Area)")
        return plan
    areas = _suffixed(header, *SKYLINE_AREA)
    rts = _suffixed(header, *SKYLINE_RT)
    if not areas or not rts:
        return None
    return Plan(
        layout="skyline_pivoted",
        label="Skyline report (pivoted by replicate)",
        name=[name],
        rt=rts,
        volume=areas,
        anchor=None,
        samples=list(areas),
    )


# Most specific first: an MS-DIAL alignment also has a "Metabolite name".
LAYOUTS = (_msdial_alignment, _msdial_peaklist, _mzmine_modular, _mzmine_legacy, _lipidsearch, _skyline)


def plan_for(header: list[str], preamble: list[list[str]] = ()) -> Plan | None:
    """The plan for a recognised header, or None for a table of no known layout."""
    cells = [cell.strip() for cell in header]
    for recognise in LAYOUTS:
        plan = recognise(cells, list(preamble))
        if plan is not None:
            return plan
    return None


def is_blank(cell: str) -> bool:
    return cell.strip().lower() in BLANK_TEXT
