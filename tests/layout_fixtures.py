"""The real sample's peaks written as each tool's export would write them.

Every writer follows the layout the tool's own export code produces (the sources are named in
docs/inputs.md): column names and order, rows above the header, delimiter, line ending, number
formatting, booleans and missing values. The peaks are the sample's own; what a tool adds
(unannotated features, other lipid classes, a rejected row) is added here with names that say so,
so a test can count what must be skipped.
"""

from __future__ import annotations

import csv
import io
import re

import pandas as pd

from tests.conftest import sample_data_dir

SAMPLE = sample_data_dir() / "porcine_brain_gangliosides.csv"

# Rows the tools write besides the gangliosides: the reader must skip each, with its reason.
EXTRA_FEATURES = [("Unknown", 5.5), ("PC 34:1|PC 16:0_18:1", 12.25), ("Cer 36:1;O2", 14.5)]
MSDIAL5_METADATA = [
    "Alignment ID", "Average Rt(min)", "Average Mz", "Metabolite name", "Adduct type", "Post curation result",
    "Fill %", "MS/MS assigned", "Reference RT", "Reference m/z", "Formula", "Ontology", "INCHIKEY", "SMILES",
    "Annotation tag (VS1.0)", "RT matched", "m/z matched", "MS/MS matched", "Comment",
    "Manually modified for quantification", "Manually modified for annotation", "Isotope tracking parent ID",
    "Isotope tracking weight number", "RT similarity", "m/z similarity", "Simple dot product",
    "Weighted dot product", "Reverse dot product", "Matched peaks count", "Matched peaks percentage",
    "Total score", "S/N average", "Spectrum reference file name", "MS1 isotopic spectrum", "MS/MS spectrum",
]  # fmt: skip
MSDIAL4_PEAKLIST = [
    "PeakID", "Title", "Scans", "RT left(min)", "RT (min)", "RT right (min)", "Precursor m/z", "Height", "Area",
    "Model masses", "Adduct", "Isotope", "Comment", "Reference RT", "Reference m/z", "Formula", "Ontology",
    "InChIKey", "SMILES", "Annotation tag (VS1.0)", "RT matched", "m/z matched", "MS/MS matched",
    "RT similarity", "Dot product", "Reverse dot product", "Fragment presence %", "Total score", "S/N",
    "MS1 isotopes", "MSMS spectrum",
]  # fmt: skip
SAMPLES = ["Brain_1", "Brain_2", "Brain_3"]


def sample_peaks() -> pd.DataFrame:
    """The real sample: Name, RT, Volume, Log P, Anchor (T/F), in file order."""
    return pd.read_csv(SAMPLE, dtype={"Anchor": str})


def space_form(name: str) -> str:
    """`GD1a+OAc(36:1;O2)` -> `GD1a+OAc 36:1;O2` (MS-DIAL and MZmine write the space form)."""
    return re.sub(r"\((.*)\)$", r" \1", name)


def species_form(name: str, separator: str = "/") -> str:
    """`GM3(36:1;O2)` -> `GM3(d18:1/18:0)`: a sphingoid base d18:1 (t18:0 for O3) and the rest as
    the N-acyl chain, as LipidSearch names species."""
    match = re.fullmatch(r"(?P<head>.*)\((?P<c>\d+):(?P<db>\d+);O(?P<ox>\d+)\)", name)
    carbons, bonds, oxygen = int(match["c"]), int(match["db"]), int(match["ox"])
    base = "t18:0" if oxygen == 3 else "d18:1" if bonds else "d18:0"
    acyl_bonds = bonds - (1 if base == "d18:1" else 0)
    return f"{match['head']}({base}{separator}{carbons - 18}:{acyl_bonds})"


def _text(rows: list[list[str]], delimiter: str, newline: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buffer.getvalue().encode("ascii")


def _samples(volume: int) -> list[int]:
    """Three sample areas whose mean is the sample's volume to within rounding: 0.9x, 1x, 1.1x."""
    return [round(volume * 0.9), volume, round(volume * 1.1)]


def msdial_alignment(peaks: pd.DataFrame | None = None) -> bytes:
    """MS-DIAL 5 alignment result (Area), tab, CRLF, ASCII: four file-metadata rows above the
    header with their labels in the last metadata column; three Sample files and a Blank; class
    averages and standard deviations at the end under repeated class names."""
    peaks = sample_peaks() if peaks is None else peaks
    files = [*SAMPLES, "Blank_1"]
    classes = ["Brain", "Brain", "Brain", "Blank"]
    stat_classes = ["Brain", "Blank"]
    pad = [""] * (len(MSDIAL5_METADATA) - 1)
    rows = [
        [*pad, "Class", *classes, *(["NA"] * 4)],
        [*pad, "File type", "Sample", "Sample", "Sample", "Blank", *(["NA"] * 4)],
        [*pad, "Injection order", "1", "2", "3", "4", *(["NA"] * 4)],
        [*pad, "Batch ID", "1", "1", "1", "1", "Average", "Average", "Stdev", "Stdev"],
        [*MSDIAL5_METADATA, *files, *stat_classes, *stat_classes],
    ]
    features = [(r.Name, r.RT, int(r.Volume), r.Anchor == "T") for r in peaks.itertuples()]
    features += [(name, rt, 1000, True) for name, rt in EXTRA_FEATURES]
    for number, (name, rt, volume, anchor) in enumerate(features):
        written = space_form(name) if "(" in name else name
        if name.startswith("G") and not anchor:
            written = f"w/o MS2: {written}" if number % 2 else written
        if written.startswith("GM3 ") and number % 3 == 0:
            written = f"{written}|{written.split(';')[0]};O2/16:0"  # species|molecular species
        areas = _samples(volume)
        metadata = dict.fromkeys(MSDIAL5_METADATA, "null")
        metadata |= {
            "Alignment ID": str(number),
            "Average Rt(min)": f"{rt:.3f}",
            "Average Mz": f"{1100 + number * 0.5:.5f}",
            "Metabolite name": written,
            "Adduct type": "[M-H]-",
            "Fill %": "1.00",
            "MS/MS assigned": "True",
            "Ontology": "Ganglioside" if name.startswith("G") else "null",
            "RT matched": "False",
            "m/z matched": "True",
            "MS/MS matched": "True" if anchor else "False",
            "Comment": "Normalized unit: Area",
            "Manually modified for quantification": "False",
            "Manually modified for annotation": "False",
            "Total score": f"{(85.0 if anchor else 40.0):.3f}",
            "S/N average": f"{50.0:.2f}",
            "Spectrum reference file name": SAMPLES[0],
            "MS1 isotopic spectrum": "1100.50000:100 1101.50000:60",
        }
        mean, spread = sum(areas) / 3, (max(areas) - min(areas)) / 2
        rows.append([*metadata.values(), *map(str, areas), "0", repr(mean), "0", repr(spread), "0"])
    return _text(rows, "\t", "\r\n")


def msdial_peaklist(peaks: pd.DataFrame | None = None) -> bytes:
    """MS-DIAL 4 single-file peak list, tab, CRLF: `Title`, `RT (min)`, `Area`, `MS/MS matched`."""
    peaks = sample_peaks() if peaks is None else peaks
    rows = [MSDIAL4_PEAKLIST]
    features = [(r.Name, r.RT, int(r.Volume), r.Anchor == "T") for r in peaks.itertuples()]
    features += [(name, rt, 1000, False) for name, rt in EXTRA_FEATURES]
    for number, (name, rt, volume, anchor) in enumerate(features):
        cells = dict.fromkeys(MSDIAL4_PEAKLIST, "null")
        cells |= {
            "PeakID": str(number),
            "Title": space_form(name) if "(" in name else name,
            "Scans": str(1000 + number),
            "RT left(min)": repr(rt - 0.05),
            "RT (min)": repr(rt),
            "RT right (min)": repr(rt + 0.05),
            "Precursor m/z": repr(1100 + number * 0.5),
            "Height": str(volume // 10),
            "Area": str(volume),
            "Isotope": "M + 0",
            "MS/MS matched": "True" if anchor else "False",
            "Annotation tag (VS1.0)": "999" if name == "Unknown" else "410",
            "MS1 isotopes": "",
            "MSMS spectrum": "",
        }
        rows.append(list(cells.values()))
    return _text(rows, "\t", "\r\n")


def _e_notation(value: float) -> str:
    """MZmine's intensity format `0.###E0`: 530172 -> `5.302E5`."""
    mantissa, exponent = f"{value:.3E}".split("E")
    return f"{mantissa.rstrip('0').rstrip('.')}E{int(exponent)}"


def mzmine_modular(peaks: pd.DataFrame | None = None) -> bytes:
    """MZmine 3/4 modular CSV: row types first (`id`, `mz`, `rt`, `area`, `height`, `charge`,
    `fragment_scans`, annotations as `type:subtype`), then `datafile:<file>:<type>` per raw file;
    comma, LF, blanks for missing values, intensities as `0.###E0`."""
    peaks = sample_peaks() if peaks is None else peaks
    files = [f"{s}.mzML" for s in SAMPLES[:2]]
    per_file = ["feature_state", "mz", "rt", "area", "height", "fragment_scans"]
    header = [
        "id", "mz", "rt", "area", "height", "charge", "fragment_scans",
        "compound_db_identity:compound_db_identity", "compound_db_identity:compound_name",
        "compound_db_identity:mol_formula", "compound_db_identity:adduct",
        "compound_db_identity:compound_annotation_score",
    ]  # fmt: skip
    header += [f"datafile:{f}:{t}" for f in files for t in per_file]
    rows = [header]
    features = [(r.Name, r.RT, int(r.Volume), r.Anchor == "T") for r in peaks.itertuples()]
    features += [("", 5.5, 1000, True), ("PC 34:1", 12.25, 1000, True)]  # unannotated; another class
    for number, (name, rt, volume, anchor) in enumerate(features, start=1):
        scans = "2" if anchor else "0"
        named = space_form(name) if "(" in name else name
        annotation = [f"{named}: [M-H]-: 0.91", named, "", "[M-H]-", "0.91"] if named else ["", "", "", "", ""]
        cells = [str(number), f"{1100 + number * 0.5:.5f}", f"{rt:.4f}", _e_notation(volume)]
        cells += [_e_notation(volume / 10), "1", scans, *annotation]
        for _ in files:
            cells += ["DETECTED", f"{1100 + number * 0.5:.5f}", f"{rt:.4f}", _e_notation(volume)]
            cells += [_e_notation(volume / 10), scans]
        rows.append(cells)
    return _text(rows, ",", "\n")


def mzmine_legacy(peaks: pd.DataFrame | None = None) -> bytes:
    """MZmine 2 legacy CSV: `row ID`, `row m/z`, `row retention time`, identities, `row comment`,
    then `<file> Peak ...` per raw file; every line ends with the separator. MZmine 2 writes
    nothing about MS/MS, so here the analyst's comment says `MS2` for the confirmed peaks."""
    peaks = sample_peaks() if peaks is None else peaks
    files = [f"{s}.mzML" for s in SAMPLES[:2]]
    header = ["row ID", "row m/z", "row retention time", "row identity (main ID)", "row identity (all IDs)"]
    header += ["row comment"] + [f"{f} Peak {m}" for f in files for m in ("status", "RT", "height", "area")]
    rows = [[*header, ""]]
    features = [(r.Name, r.RT, int(r.Volume), r.Anchor == "T") for r in peaks.itertuples()]
    features += [("", 5.5, 1000, False)]
    for number, (name, rt, volume, anchor) in enumerate(features, start=1):
        cells = [str(number), repr(1100 + number * 0.5), repr(rt), name, name, "MS2" if anchor else ""]
        for _ in files:
            cells += ["DETECTED", repr(rt), repr(volume / 10), repr(float(volume))]
        rows.append([*cells, ""])
    return _text(rows, ",", "\n")


def lipidsearch4(peaks: pd.DataFrame | None = None) -> bytes:
    """LipidSearch 4.2: `#[c-N]:<raw file>` and `#key:value` declarations, a blank line, then a
    tab-separated table whose lines all end with a tab; per-sample blocks `Area[c-N]`, `Rt[c-N]`,
    `Grade[c-N]`; names with the ion after them (`GM3(d18:1/18:0)-H`); `Rej.` 0/1."""
    peaks = sample_peaks() if peaks is None else peaks
    keys = ["c-1", "c-2"]
    lines = [f"#[{k}]:{s}.raw" for k, s in zip(keys, SAMPLES, strict=False)]
    lines += ["#normalize base:", "#control group:c", "#toprank filter:true", "#mScoreThreshold:5.0", ""]
    header = ["Rej.", "LipidIon", "LipidGroup", "Class", "FattyAcid", "CalcMz", "IonFormula"]
    header += [f"{m}[{k}]" for m in ("Area", "Height", "Rt", "Grade", "ObsMz") for k in keys]
    rows = [[*header, ""]]
    features = [(r.Name, r.RT, int(r.Volume), r.Anchor == "T", "0") for r in peaks.itertuples()]
    features += [(peaks.Name.iloc[0], 3.3, 1000, True, "1")]  # rejected by the analyst in LipidSearch
    for name, rt, volume, anchor, rejected in features:
        species = species_form(name)
        ion = species + "-H"
        head = species.split("(")[0]
        grade = "A" if anchor else "C"
        cells = [rejected, ion, species, head, species[len(head) :], "1100.6", "C59 H107 N2 O21"]
        cells += [str(volume), str(volume), str(volume // 10), str(volume // 10), repr(rt), repr(rt), grade, "D"]
        cells += ["1100.6", "1100.6"]
        rows.append([*cells, ""])
    table = _text(rows, "\t", "\n").decode("ascii")
    return ("\n".join(lines) + "\n" + table).encode("ascii")


def lipidsearch5(peaks: pd.DataFrame | None = None) -> bytes:
    """LipidSearch 5.x, tab-separated although named .csv: `LipidMolec`, `ClassKey`, `CalcMass`,
    `BaseRt`, `TotalGrade`, `TotalSmpIDRate(%)`, `FAKey`, `MeanArea[sN]`; names `GM3(d18:1_18:0)`."""
    peaks = sample_peaks() if peaks is None else peaks
    header = ["LipidMolec", "ClassKey", "CalcMass", "BaseRt", "TotalGrade", "TotalSmpIDRate(%)", "FAKey"]
    header += ["MeanArea[s1]", "MeanArea[s2]"]
    rows = [header]
    for r in peaks.itertuples():
        species = species_form(r.Name, "_")
        head = species.split("(")[0]
        grade = "B" if r.Anchor == "T" else "D"
        volume = int(r.Volume)
        rows.append(
            [species, head, "1180.7", repr(r.RT), grade, "100.0", species[len(head) :], f"{volume}.0", f"{volume}.0"]
        )
    return _text(rows, "\t", "\n")


def skyline_long(peaks: pd.DataFrame | None = None) -> bytes:
    """Skyline "Molecule Transition Results" with an analyst's annotation column, comma, one row
    per molecule, replicate and transition (two transitions whose areas add up to the volume);
    `#N/A` for missing numbers."""
    peaks = sample_peaks() if peaks is None else peaks
    header = [
        "Molecule Name", "Molecule List Name", "Replicate Name", "Precursor Mz", "Precursor Name",
        "Precursor Adduct", "Precursor Charge", "Fragment Ion", "Product Mz", "Product Name", "Product Adduct",
        "Product Charge", "Retention Time", "Area", "Background", "Peak Rank", "MSMS Confirmed",
    ]  # fmt: skip
    rows = [header]
    for r in peaks.itertuples():
        volume = int(r.Volume)
        first = round(volume * 0.6)
        for replicate in SAMPLES[:2]:
            for ion, area in (("Ion [290.09]", first), ("Ion [581.18]", volume - first)):
                rows.append(
                    [r.Name, r.Name.split("(")[0], replicate, "1100.6", "", "[M-H]", "-1", ion, ion[5:-1], "", "",
                     "-1", repr(r.RT), str(area), "#N/A", "1",
                     "True" if r.Anchor == "T" else "False"]
                )  # fmt: skip
    return _text(rows, ",", "\n")


def skyline_pivoted(peaks: pd.DataFrame | None = None) -> bytes:
    """Skyline precursor report pivoted by replicate: `<replicate> Retention Time` and
    `<replicate> Total Area` columns."""
    peaks = sample_peaks() if peaks is None else peaks
    header = ["Molecule Name", "Molecule List Name", "Precursor Mz", "MSMS Confirmed"]
    header += [f"{s} {m}" for s in SAMPLES[:2] for m in ("Retention Time", "Total Area")]
    rows = [header]
    for r in peaks.itertuples():
        cells = [r.Name, r.Name.split("(")[0], "1100.6", "True" if r.Anchor == "T" else "False"]
        for _ in SAMPLES[:2]:
            cells += [repr(r.RT), str(int(r.Volume))]
        rows.append(cells)
    return _text(rows, ",", "\n")


def without_log_p(peaks: pd.DataFrame | None = None) -> bytes:
    peaks = sample_peaks() if peaks is None else peaks
    return peaks.drop(columns=["Log P"]).to_csv(index=False).encode()


# name -> (writer, file name, mapping a user gives, what differs from the native table and why)
LAYOUTS = {
    "msdial_alignment": (msdial_alignment, "Area_0_2026_12_01_10_00_00.txt", None),
    "msdial_peaklist": (msdial_peaklist, "peaks.txt", None),
    "mzmine_modular": (mzmine_modular, "full_feature_table.csv", None),
    "mzmine_legacy": (mzmine_legacy, "quant_mzmine.csv", {"anchor": "row comment", "anchor_rule": "in MS2"}),
    "lipidsearch4": (lipidsearch4, "LIPIDS_NEG.txt", None),
    "lipidsearch5": (lipidsearch5, "lipidsearch5.csv", None),
    "skyline_long": (skyline_long, "Molecule Transition Results.csv", {"anchor": "MSMS Confirmed"}),
    "skyline_pivoted": (skyline_pivoted, "pivoted.csv", {"anchor": "MSMS Confirmed"}),
}
