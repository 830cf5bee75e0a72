"""Command line: `python -m analysis run INPUT ...` and `python -m analysis example --out FILE`.

Exit codes: 0 success, 2 bad input or bad arguments (one message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis import __version__
from analysis.errors import InputError, InvalidRowsError, TableError
from analysis.export import EXPORT_FORMATS, check_writable, is_missing, write_bytes_atomic, write_result
from analysis.params import PARAMETER_SPECS, Parameters
from analysis.result import AnalysisResult

EXIT_OK = 0
EXIT_INPUT_ERROR = 2
MAX_ISSUES_SHOWN = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: same exit code as bad input
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parameters = "\n".join(
        f"  {spec.name:30s} {spec.default!s:10s} {spec.describe_range():22s} {spec.help}" for spec in PARAMETER_SPECS
    )
    parser = _Parser(
        prog="python -m analysis",
        description="Check ganglioside identifications by retention time.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"parameters for --set (name, default, allowed, meaning):\n{parameters}",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="analyse a peak table (CSV, TSV or XLSX)")
    run.add_argument("input", help="peak table with columns Name, RT, Volume, Anchor and optionally Log P")
    run.add_argument(
        "--out",
        action="append",
        default=[],
        metavar="FILE",
        help=f"write the result ({', '.join(EXPORT_FORMATS)} by extension); repeatable",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="settings",
        help="set an analysis parameter; repeatable",
    )
    run.add_argument(
        "--on-invalid-rows",
        choices=("reject", "skip"),
        help="reject (default): stop on any invalid row; skip: analyse the valid rows",
    )
    run.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        dest="mapping",
        help="take a field (Name, RT, Volume, Log P, Anchor) from a column of another name, "
        "e.g. --map 'RT=Average Rt(min)'; repeatable",
    )
    run.add_argument(
        "--sample",
        metavar="NAME",
        help="in an export with one area column per sample: analyse this sample (default: the mean of the samples)",
    )
    run.add_argument(
        "--anchor-rule",
        metavar="RULE",
        help="what makes a row MS/MS-confirmed: 'yes/no' (a T/F column), '>= 80' (a score), 'in A,B' (grades)",
    )
    run.add_argument(
        "--preset",
        metavar="FILE.json",
        help='a saved mapping: a JSON object such as {"Anchor": "Total score", "anchor_rule": ">= 80"}; '
        "--map, --sample and --anchor-rule override it",
    )
    run.add_argument("--quiet", action="store_true", help="print nothing on success")

    example = commands.add_parser("example", help="write the synthetic example extract")
    example.add_argument("--out", required=True, metavar="FILE.csv", help="where to write the table")
    example.add_argument("--rows", type=int, default=300, help="number of peaks (default 300)")
    example.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    example.add_argument("--truth", metavar="FILE.csv", help="also write the known truth per row")
    example.add_argument(
        "--prefix-offset-sd",
        type=float,
        default=0.0,
        metavar="MIN",
        help="give every prefix its own RT offset with this SD in minutes (default 0)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        return _example(args)
    except InvalidRowsError as exc:
        _print_issues(exc)
        return EXIT_INPUT_ERROR
    except InputError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except OSError as exc:  # the file system refused (permissions, full disk...): say so, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _parse_settings(settings: list[str], on_invalid_rows: str | None) -> Parameters:
    values: dict[str, str] = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--set expects NAME=VALUE, got {item!r}")
        values[name.strip()] = value
    if on_invalid_rows:
        values["on_invalid_rows"] = on_invalid_rows
    return Parameters.from_mapping(values)


def _read_preset(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    import json

    try:
        preset = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--preset: cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InputError(f"--preset: {path} is not a JSON object of field: column") from None
    if not isinstance(preset, dict) or not all(isinstance(v, str) for v in preset.values()):
        raise InputError(f'--preset: {path} must hold a JSON object of field: column, e.g. {{"RT": "rt"}}')
    return preset


def _parse_mapping(items: list[str], preset: dict[str, str] | None = None, **choices: str | None) -> dict[str, str]:
    from analysis.reader import check_mapping

    try:
        given = check_mapping(preset or {})
    except TableError as exc:
        raise InputError(f"--preset: {exc.message}") from None
    mapping: list[tuple[str, str]] = []
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InputError(f"--map expects FIELD=COLUMN, e.g. 'RT=Average Rt(min)', got {item!r}")
        mapping.append((field.strip(), column.strip()))
    try:
        given |= check_mapping(mapping)
        given |= check_mapping({option: value for option, value in choices.items() if value})
    except TableError as exc:
        raise InputError(f"--map: {exc.message}") from None
    return given


def _run(args: argparse.Namespace) -> int:
    params = _parse_settings(args.settings, args.on_invalid_rows)
    mapping = _parse_mapping(args.mapping, _read_preset(args.preset), sample=args.sample, anchor_rule=args.anchor_rule)
    path = Path(args.input)
    if not path.is_file():
        raise InputError(f"no such file: {args.input}" if not path.exists() else f"not a file: {args.input}")
    # Every output is checked before the analysis runs, so a bad --out fails at once and
    # never after some of the files have been written.
    for out in args.out:
        suffix = Path(out).suffix.lower().lstrip(".")
        if suffix not in EXPORT_FORMATS:
            raise InputError(f"cannot write '{out}': use a .csv, .xlsx or .json file name")
        check_writable(out)
        if Path(out).exists() and Path(out).samefile(path):
            raise InputError(f"cannot write '{out}': it is the input file")
    # Imported only now, so that argument errors are reported without loading the statistics libraries.
    from analysis.pipeline import run_file

    result = run_file(path, params=params, mapping=mapping)
    for out in args.out:
        write_result(result, out)
    if not args.quiet:
        print(format_summary(result, args.out))
    return EXIT_OK


def _example(args: argparse.Namespace) -> int:
    from analysis.synthetic import generate_extract

    # No more rows than `run` accepts with its default max_rows, so the example is always usable.
    most = Parameters().max_rows
    if args.rows < 20 or args.rows > most:
        raise InputError(f"--rows must be between 20 and {most:,}")
    if not 0 <= args.prefix_offset_sd <= 5:
        raise InputError("--prefix-offset-sd must be between 0 and 5 minutes")
    for out in (args.out, args.truth):
        if out:
            check_writable(out)
    extract = generate_extract(args.rows, seed=args.seed, prefix_offset_sd=args.prefix_offset_sd)
    write_bytes_atomic(extract.to_csv_bytes(), args.out)
    if args.truth:
        write_bytes_atomic(extract.truth.to_csv(index=False, lineterminator="\n").encode("utf-8"), args.truth)
    print(f"wrote {len(extract.table)} peaks to {args.out}" + (f" and the truth to {args.truth}" if args.truth else ""))
    return EXIT_OK


def _print_issues(exc: InvalidRowsError) -> None:
    bad_rows = len({issue.row for issue in exc.issues})
    print(f"error: {bad_rows} of {exc.n_rows} rows are invalid; nothing was analysed.", file=sys.stderr)
    for issue in exc.issues[:MAX_ISSUES_SHOWN]:
        print(f"  {issue}", file=sys.stderr)
    if len(exc.issues) > MAX_ISSUES_SHOWN:
        print(f"  ... and {len(exc.issues) - MAX_ISSUES_SHOWN} more", file=sys.stderr)
    print("Fix the file, or rerun with --on-invalid-rows skip to analyse the valid rows.", file=sys.stderr)


def format_summary(result: AnalysisResult, outputs: Sequence[str] = ()) -> str:
    summary, metrics = result.summary, result.metrics
    source = result.provenance["input"]
    lines = [
        f"{source['filename']}: {summary['n_rows']} rows (sha256 {source['sha256'][:12]}…)",
        "status: " + ", ".join(f"{k} {v}" for k, v in summary["counts"].items()),
        f"model: {summary['model']}",
    ]
    if summary["model"] == "fitted":
        lines.append(
            f"outliers: {summary['identity_outliers']} identities (main peaks), {summary['extra_peak_outliers']} "
            f"extra peaks, {summary['anchors_inconsistent']} anchors inconsistent with the model"
        )
        lines.append(
            f"anchors used {metrics['n_anchors_used']} of {summary['n_anchors']}; RMSEP leave-one-out "
            f"{_number(metrics['loo_rmsep'], '.3f', ' min')}, leave-one-prefix-out "
            f"{_number(metrics['lopo_rmsep'], '.3f', ' min')} "
            f"({metrics['lopo_n_scored']} anchors scored, "
            f"interval coverage {_number(metrics['lopo_coverage'], '.0%')}), "
            f"leave-one-head-group-out {_number(metrics['lohgo_rmsep'], '.3f', ' min')} "
            f"({metrics['lohgo_n_scored']} scored), every confirmed anchor "
            f"{_number(metrics['loo_rmsep_all_anchors'], '.3f', ' min')}"
        )
        lines.append(
            f"main peaks of names without an anchor inside their interval: "
            f"{_number(metrics['pi_coverage_main_peaks'], '.1%')} of {metrics['n_main_peaks_scored']}; "
            f"rows with a prediction interval {_number(metrics['fraction_with_pi'], '.1%')}"
        )
    lines.append(
        f"O-acetylation: {summary['oac_pairs']} pairs, {summary['oac_inconsistent']} inconsistent; "
        f"rows flagged for fragment review: {summary['n_fragment_review']}; "
        f"Log P inconsistent: {summary['n_logp_inconsistent']}"
    )
    for notice in source["notices"]:
        lines.append(f"note: {notice}")
    for out in outputs:
        lines.append(f"wrote {out}")
    return "\n".join(lines)


def _number(value: float | None, spec: str, unit: str = "") -> str:
    """A metric for the summary; one that could not be computed reads `n/a` rather than `nan`."""
    if is_missing(value):
        return "n/a"
    return f"{value:{spec}}{unit}"
