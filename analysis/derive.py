"""From a recognised export's records to the analysis fields of each row.

`analysis.layouts` says where a tool keeps each field; here the user's choices are applied on
top (a column mapping, which sample, an anchor rule), rows the analysis cannot use are set aside
with a reason (unannotated, another lipid class, rejected in the tool), the volume of a
multi-sample table is taken from one sample or the mean of the samples, and every choice made
is written down for the preview and the result's provenance.
"""

from __future__ import annotations

import dataclasses
import re

from analysis.anchor_rule import AnchorRule
from analysis.errors import RowIssue, TableError
from analysis.layouts import MEAN, Plan, is_blank, key
from analysis.names import looks_like_ganglioside, split_annotation

FIELD_LABELS = {"name": "Name", "rt": "RT", "volume": "Volume", "anchor": "Anchor", "log_p": "Log P"}
SKIPPED_ROWS_LISTED = 200  # row numbers kept per reason in the provenance
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


@dataclasses.dataclass
class Derived:
    header: list[str]  # Name, RT, Volume, Anchor[, Log P], then the file's columns kept
    field_index: dict[str, int]
    kept: list[tuple[str, int]]  # (output name, position) of the file's own columns
    records: list[list[str]]
    row_numbers: list[int]
    row_issues: list[RowIssue]
    skipped: list[tuple[int, str, str]]  # (row, name as written, reason)
    notices: list[str]
    reading: dict


def apply_choices(plan: Plan, header: list[str], choices: dict[str, str]) -> Plan:
    """The user's mapping on top of the layout: fields from other columns, a sample, an anchor rule."""
    plan = dataclasses.replace(plan, notes=list(plan.notes))
    positions = {key(cell): i for i, cell in reversed(list(enumerate(header)))}
    exact = {cell.strip(): i for i, cell in reversed(list(enumerate(header)))}
    for field in ("name", "rt", "volume", "anchor", "log_p"):
        column = choices.get(field)
        if column is None:
            continue
        position = exact.get(column.strip(), positions.get(key(column)))
        if position is None:
            found = ", ".join(repr(c) for c in header[:12]) + (" ..." if len(header) > 12 else "")
            raise TableError(
                f"the column mapping takes {FIELD_LABELS[field]} from column {column!r}, which the file does not "
                f"have (found {found})"
            )
        if field == "name":
            plan.name = [position]
        elif field == "anchor":
            if plan.anchor != position:
                plan.anchor_rule = AnchorRule("flag")
            plan.anchor = position
        elif field == "volume":
            plan.volume, plan.samples, plan.mean_of = position, [], None
        else:
            setattr(plan, field, position)
    if choices.get("anchor_rule"):
        plan.anchor_rule = AnchorRule.parse(choices["anchor_rule"])
    return plan


def check_plan(plan: Plan, header: list[str]) -> None:
    """Refuse a plan that lacks a field, saying what to map."""
    missing = []
    if not plan.name:
        missing.append(("Name", "the annotation column"))
    if plan.rt is None:
        missing.append(("RT", "the retention-time column"))
    if plan.volume is None and plan.long_format is None:
        missing.append(("Volume", "the area or height column"))
    if plan.anchor is None:
        missing.append(("Anchor", "a column saying which rows are MS/MS-confirmed, with a rule for it"))
    if missing:
        wanted = "; ".join(f"{field}: {what}" for field, what in missing)
        raise TableError(
            f"recognised as {plan.label}, but it has nothing the analysis can use for "
            f"{', '.join(field for field, _ in missing)}. Choose in the column mapping ({wanted}); e.g. "
            "Anchor=COLUMN with anchor_rule '>= 0.8' for a score, 'in A,B' for a grade, 'yes/no' for a T/F column"
        )


def pivot_long(plan: Plan, header: list[str], records: list[list[str]], rows: list[int]):
    """A long report (one row per molecule, replicate and perhaps transition) as one row per
    molecule with `<replicate> Area` and `<replicate> Retention Time` columns."""
    key_columns, replicate_column = plan.long_format
    rt_column, area_column = plan.rt, plan.volume
    transition_columns = [i for i, cell in enumerate(header) if key(cell) in ("fragmention", "productmz")]
    replicates: dict[str, None] = {}
    first_rows: list[tuple[list[str], int]] = []
    values: list[dict[str, list]] = []
    current, seen = None, set()
    for record, row in zip(records, rows, strict=True):
        # A report lists a molecule's rows together (document order); a molecule of the same
        # name later on, or a replicate and transition seen again, is another peak.
        group = tuple(record[i].strip() for i in key_columns)
        replicate = record[replicate_column].strip()
        occurrence = (replicate, *(record[i].strip() for i in transition_columns))
        replicates.setdefault(replicate)
        if group != current or occurrence in seen:
            current, seen = group, set()
            first_rows.append((record, row))
            values.append({})
        seen.add(occurrence)
        cell = values[-1].setdefault(replicate, [[], []])
        cell[0].append(record[rt_column])
        cell[1].append(record[area_column])
    names = list(replicates)
    width = len(header)
    new_header = list(header) + [f"{r} Retention Time" for r in names] + [f"{r} Area" for r in names]
    new_records, new_rows = [], []
    for (record, row), by_replicate in zip(first_rows, values, strict=True):
        rts, areas = [], []
        for replicate in names:
            rt_cells, area_cells = by_replicate.get(replicate, [[], []])
            rts.append(next((c for c in rt_cells if not is_blank(c)), ""))
            if plan.sum_volume:
                numbers = [c for c in area_cells if not is_blank(c)]
                areas.append(_sum_text(numbers))
            else:
                areas.append(next((c for c in area_cells if not is_blank(c)), ""))
        new_records.append(list(record) + rts + areas)
        new_rows.append(row)
    plan = dataclasses.replace(
        plan,
        rt={r: width + i for i, r in enumerate(names)},
        volume={r: width + len(names) + i for i, r in enumerate(names)},
        samples=names,
        long_format=None,
        notes=[
            *plan.notes,
            f"{len(records):,} report rows combined into {len(new_records):,} molecules × {len(names)} replicates",
        ],
    )
    return plan, new_header, new_records, new_rows, {replicate_column, rt_column, area_column}


def _sum_text(cells: list[str]) -> str:
    try:
        return repr(sum(float(c) for c in cells)) if cells else ""
    except ValueError:
        return next(c for c in cells if not _is_number(c))  # the reader reports the cell that is not a number


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def derive(
    plan: Plan,
    header: list[str],
    records: list[list[str]],
    rows: list[int],
    *,
    sample: str | None,
    decimal_comma: bool,
) -> Derived:
    consumed: set[int] = set()
    if plan.long_format is not None:
        plan, header, records, rows, consumed = pivot_long(plan, header, records, rows)
    chosen = _choose_sample(plan, sample)
    _check_sample_has_values(plan, header, records, chosen)
    issues: list[RowIssue] = []
    skipped: list[tuple[int, str, str]] = []
    out_records: list[list[str]] = []
    out_rows: list[int] = []
    consumed |= set(plan.name) | {source for source in (plan.rt, plan.volume) if isinstance(source, int)}
    kept = [
        (plan.renamed.get(i, header[i]), i)
        for i in range(len(header))
        if i not in consumed and i != plan.log_p and (header[i].strip() or any(r[i].strip() for r in records[:50]))
    ]
    kept = _unique_names(kept)
    with_log_p = plan.log_p is not None
    for record, row in zip(records, rows, strict=True):
        written = next((record[i].strip() for i in plan.name if not is_blank(record[i])), "")
        if plan.clean_name and written:
            written = plan.clean_name(written)
        reason = plan.skip_rows(record) if plan.skip_rows else None
        if reason is None:
            reason = _unusable_name(written)
        if reason is not None:
            skipped.append((row, written, reason))
            continue
        rt = _value(plan.rt, record, chosen, plan, row, "RT", issues, decimal_comma, positive_only=True)
        volume = _value(plan.volume, record, chosen, plan, row, "Volume", issues, decimal_comma)
        anchor = _anchor(plan, record, chosen, row, header, issues)
        cells = [written, rt, volume, anchor] + ([record[plan.log_p]] if with_log_p else [])
        out_records.append(cells + [record[i] for _, i in kept])
        out_rows.append(row)
    fields = ["name", "rt", "volume", "anchor"] + (["log_p"] if with_log_p else [])
    base = len(fields)
    out_header = [FIELD_LABELS[f] for f in fields] + [name for name, _ in kept]
    reading = _reading(plan, header, chosen, skipped)
    notices = _notices(plan, reading, skipped)
    return Derived(
        header=out_header,
        field_index={f: i for i, f in enumerate(fields)},
        kept=[(name, base + n) for n, (name, _) in enumerate(kept)],
        records=out_records,
        row_numbers=out_rows,
        row_issues=issues,
        skipped=skipped,
        notices=notices,
        reading=reading,
    )


def _unique_names(kept: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """A header may repeat a name (MS-DIAL 5's peak list has `S/N` twice): later ones get a number."""
    seen: set[str] = set()
    unique = []
    for name, position in kept:
        output, suffix = name, 2
        while output in seen:
            output, suffix = f"{name} ({suffix})", suffix + 1
        seen.add(output)
        unique.append((output, position))
    return unique


def _choose_sample(plan: Plan, sample: str | None) -> str | None:
    """None: the only sample or not a multi-sample table; MEAN; or a sample's name."""
    if not plan.samples:
        if sample not in (None, "", MEAN):
            raise TableError(f"sample {sample!r}: the table has one volume column, not one per sample")
        return None
    if sample in (None, "", MEAN):
        return MEAN if len(plan.samples) > 1 else plan.samples[0]
    if sample in plan.samples:
        return sample
    matches = [s for s in plan.samples if s.lower() == sample.lower() or s.rsplit(".", 1)[0] == sample]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(plan.samples[:10]) + (" ..." if len(plan.samples) > 10 else "")
    raise TableError(f"sample {sample!r} is not a sample of this table (samples: {shown}; or 'mean')")


def _check_sample_has_values(plan: Plan, header, records, chosen) -> None:
    """A chosen sample whose column is empty would make every row invalid: say so once."""
    if chosen in (None, MEAN) or not isinstance(plan.volume, dict) or chosen not in plan.volume:
        return
    position = plan.volume[chosen]
    if all(is_blank(record[position]) for record in records):
        raise TableError(f"sample {chosen!r}: its column '{header[position]}' has no values")


def _unusable_name(written: str) -> str | None:
    species = split_annotation(written).name.strip() if written else ""
    if not species or species.lower() in ("unknown", "unknown compound", "null"):
        return "not annotated"
    if not looks_like_ganglioside(species):
        lipid_class = re.split(r"[\s(]", species, maxsplit=1)[0]
        return f"not a ganglioside ({lipid_class})"
    return None


def _number(cell: str, decimal_comma: bool) -> float | str | None:
    text = cell.strip()
    if is_blank(text):
        return None
    if decimal_comma and _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return cell
    return None if value != value else value


def _value(source, record, chosen, plan, row, label, issues, decimal_comma, positive_only=False) -> str:
    if isinstance(source, int):
        return record[source]
    if chosen in source:
        return record[source[chosen]]
    numbers = []
    for sample in _averaged(source, chosen, plan):
        if sample not in source:
            continue
        value = _number(record[source[sample]], decimal_comma)
        if isinstance(value, str):
            issues.append(RowIssue(row, label, value, f"sample {sample!r}: not a number"))
            return ""
        if value is not None and (value > 0 or not positive_only):
            numbers.append(value)
    return repr(sum(numbers) / len(numbers)) if numbers else ""


def _anchor(plan: Plan, record, chosen, row, header, issues) -> str:
    rule = plan.anchor_rule
    if isinstance(plan.anchor, int):
        cells = [(header[plan.anchor], record[plan.anchor])]
    elif chosen not in (None, MEAN) and chosen in plan.anchor:
        cells = [(header[plan.anchor[chosen]], record[plan.anchor[chosen]])]
    else:
        cells = [(header[p], record[p]) for p in plan.anchor.values()]
    decision = "F"
    for column, cell in cells:
        verdict = rule.decide(cell)
        if verdict is None:
            issues.append(RowIssue(row, "Anchor", cell, f"'{column}': {rule.expected()}"))
            return "F"
        if verdict == "T":
            decision = "T"
    return decision


def _averaged(source: dict[str, int], chosen: str | None, plan: Plan) -> list[str]:
    """The samples a per-sample field is averaged over: those of the mean, or, when the volume
    comes from one column the user mapped (no sample chosen), every column of this field."""
    return (plan.mean_of or plan.samples) if chosen == MEAN else list(source)


def _describe(source, header, chosen, plan: Plan) -> str:
    if isinstance(source, int):
        return header[source]
    if chosen not in source:
        over = _averaged(source, chosen, plan)
        return f"mean of {len(over)} samples ({', '.join(over[:6])}{' ...' if len(over) > 6 else ''})"
    return f"sample {chosen} ('{header[source[chosen]]}')"


def _reading(plan: Plan, header, chosen, skipped) -> dict:
    if isinstance(plan.anchor, int):
        anchor = plan.anchor_rule.describe(header[plan.anchor])
    else:
        columns = [header[p] for p in plan.anchor.values()]
        one = chosen not in (None, MEAN) and chosen in plan.anchor
        shown = header[plan.anchor[chosen]] if one else f"any of {len(columns)} columns ({columns[0]}, ...)"
        anchor = plan.anchor_rule.describe(shown)
    columns = {
        "Name": " or ".join(f"'{header[i]}'" for i in plan.name),
        "RT": _describe(plan.rt, header, chosen, plan),
        "Volume": _describe(plan.volume, header, chosen, plan),
        "Anchor": anchor,
    }
    if plan.log_p is not None:
        columns["Log P"] = header[plan.log_p]
    by_reason: dict[str, list[int]] = {}
    for row, _name, reason in skipped:
        by_reason.setdefault(reason, []).append(row)
    return {
        "layout": plan.layout,
        "label": plan.label,
        "columns": columns,
        "anchor_rule": plan.anchor_rule.text,
        "samples": list(plan.samples),
        "sample": chosen,
        "skipped": {
            reason: {"count": len(found), "rows": found[:SKIPPED_ROWS_LISTED]} for reason, found in by_reason.items()
        },
        "notes": list(plan.notes),
    }


def _notices(plan: Plan, reading: dict, skipped) -> list[str]:
    notices = [f"recognised as {plan.label}"]
    notices.append("columns: " + "; ".join(f"{field} ← {what}" for field, what in reading["columns"].items()))
    if len(plan.samples) > 1:
        notices.append(
            f"{len(plan.samples)} samples; analysed: "
            + ("their mean" if reading["sample"] == MEAN else f"sample {reading['sample']}")
            + " (choose another sample, or the mean, in the column mapping)"
        )
    notices.extend(plan.notes)
    for reason, found in reading["skipped"].items():
        rows = ", ".join(map(str, found["rows"][:8])) + (" ..." if found["count"] > 8 else "")
        plural = "s" if found["count"] > 1 else ""
        notices.append(f"{found['count']:,} row{plural} skipped, {reason} (row{plural} {rows})")
    return notices
