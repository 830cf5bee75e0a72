"""Run the rules in their required order (5, 1, 2–3, 4, and the Log P check) and assemble the result."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis import __version__
from analysis.calls import call_rows, main_peaks, modification_prefix
from analysis.crossval import hold_out
from analysis.design import DESIGN_COLUMNS, design_matrix, series_column, series_design
from analysis.errors import InvalidRowsError
from analysis.fragments import find_fragments
from analysis.isomers import anchor_series, isomer_report, rank_series
from analysis.logp import check_logp
from analysis.model import FittedModel, fit_model, t_quantile
from analysis.oacetyl import check_oacetylation
from analysis.params import Parameters
from analysis.reader import DEFAULT_MAX_BYTES, read_table
from analysis.report import model_reports, summary
from analysis.result import AnalysisResult
from analysis.rowtable import build_rows
from analysis.stage import Stage
from analysis.validate import PeakTable, validate_table

ProgressCallback = Callable[[int, str, str], None]
STEP_PERCENT = {
    "loading": 5,
    "validating": 10,
    "fragments": 25,
    "model": 50,
    "outliers": 70,
    "checks": 80,
}
_NEXT_STEP = {
    "loading": "validating",
    "validating": "fragments",
    "fragments": "model",
    "model": "outliers",
    "outliers": "checks",
}


class Progress:
    """Report (percent, step, message) at each step and from inside the long ones."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last: tuple[int, str] | None = None

    def step(self, step: str, message: str) -> None:
        self._emit(STEP_PERCENT[step], step, message)

    def within(self, step: str) -> Callable[[float, str], None]:
        start = STEP_PERCENT[step]
        end = STEP_PERCENT.get(_NEXT_STEP.get(step, ""), 90)

        def report(fraction: float, message: str) -> None:
            self._emit(
                start + int((end - start - 1) * min(max(fraction, 0.0), 1.0)),
                step,
                message,
            )

        return report

    def _emit(self, percent: int, step: str, message: str) -> None:
        if self.callback is None:
            return
        self.last = (percent, step)
        self.callback(percent, step, message)


def run_file(
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    params: Parameters | None = None,
    progress: ProgressCallback | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    mapping: dict[str, str] | None = None,
) -> AnalysisResult:
    """Read, validate and analyse one table (`mapping`: which column is which, see read_table)."""
    params = params or Parameters()
    reporter = Progress(progress)
    started = _now()
    reporter.step(
        "loading",
        f"reading {filename or Path(str(source)).name if not isinstance(source, bytes) else filename or 'upload'}",
    )
    raw = read_table(source, filename=filename, max_rows=params.max_rows, max_bytes=max_bytes, mapping=mapping)
    reporter.step("validating", f"checking {len(raw.records):,} rows")
    table = validate_table(raw, progress=reporter.within("validating"))
    return analyse(table, params, progress=progress, started=started, _reporter=reporter)


def load_table(
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    params: Parameters | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    mapping: dict[str, str] | None = None,
) -> PeakTable:
    """Read and validate a table without analysing it (for previews and upload checks)."""
    params = params or Parameters()
    raw = read_table(source, filename=filename, max_rows=params.max_rows, max_bytes=max_bytes, mapping=mapping)
    return validate_table(raw)


# One BLAS thread: the engine's matrices are small (tens of columns) and a worker process per core
# already uses the machine; OpenBLAS's threads cost ten times the work on them (docs/performance.md).
@threadpool_limits.wrap(limits=1, user_api="blas")
def analyse(
    table: PeakTable,
    params: Parameters | None = None,
    *,
    progress: ProgressCallback | None = None,
    started: dt.datetime | None = None,
    _reporter: Progress | None = None,
) -> AnalysisResult:
    """Apply Rules 5, 1, 2–3 and 4 and the Log P check to a validated table."""
    params = params or Parameters()
    started = started or _now()
    clock = time.perf_counter()
    reporter = _reporter or Progress(progress)
    if table.issues and params.on_invalid_rows == "reject":
        raise InvalidRowsError(table.issues, table.n_rows)

    frame = table.frame.reset_index(drop=True)
    valid = frame["valid"].to_numpy()
    rt = frame["rt"].to_numpy(dtype=float)
    anchor = frame["anchor"].to_numpy(dtype=bool) & valid

    reporter.step("fragments", f"looking for in-source fragments among {int(valid.sum()):,} valid rows")
    fragments = find_fragments(
        frame,
        valid,
        params.fragment_window,
        params.fragment_min_precursor_ratio,
        progress=reporter.within("fragments"),
    )
    members = valid & ~fragments.is_fragment
    series = rank_series(frame, members)

    reporter.step("model", "fitting the composition model on anchors")
    anchor_positions = np.flatnonzero(members & anchor)
    heads = frame["head"].fillna("").to_numpy(dtype=object)
    index = anchor_series(frame, anchor_positions)
    series_heads = sorted({h for h in heads[anchor_positions[index[anchor_positions] > 0]]})
    design = np.hstack([design_matrix(frame), series_design(heads, index, series_heads)])
    columns = DESIGN_COLUMNS + [series_column(h) for h in series_heads]
    prefix_keys = modification_prefix(frame)
    labels = np.column_stack([heads, prefix_keys])
    model = fit_model(
        design,
        columns,
        rt,
        anchor_positions,
        labels=labels,
        rows=frame["row"].to_numpy(),
        alpha=params.alpha,
        min_anchors=params.min_anchors,
    )

    reporter.step("outliers", "predicting every row and testing its retention time")
    fitted = isinstance(model, FittedModel)
    if fitted:
        lopo = hold_out(model, rt, labels, prefix_keys)
        lohgo = hold_out(model, rt, labels, heads)
        calls = call_rows(
            frame, members, design, index, model, lopo=lopo, lohgo=lohgo, pi_level=params.pi_level, alpha=params.alpha
        )
    else:
        lopo = lohgo = []
        calls = None
    main = calls.main if calls is not None else main_peaks(frame, members)

    reporter.step("checks", "checking isomer series, O-acetylation and Log P")
    offsets = model.series.learned if fitted else {}
    scatter = float(np.sqrt(model.fit.sigma2 + calls.component("species"))) if fitted else 0.0
    quantile = t_quantile(0.5 + params.pi_level / 2, model.df) if fitted else 1.96
    isomer_pairs = isomer_report(frame, members, series, offsets=offsets, scatter_sd=scatter, quantile=quantile)
    oacetylation, _ = check_oacetylation(
        frame,
        members,
        is_fragment=fragments.is_fragment,
        fragment_of=fragments.fragment_of,
        series=series,
        main=main,
        tolerance=params.oac_tolerance,
    )
    stage = Stage(
        table=table,
        frame=frame,
        params=params,
        fragments=fragments,
        members=members,
        series=series,
        anchor_index=index,
        design=design,
        model=model,
        calls=calls,
        main=main,
        prefix_keys=prefix_keys,
        lopo=lopo,
        lohgo=lohgo,
        logp=check_logp(frame, valid),
        oac_notes=_oac_notes(oacetylation),
    )
    rows, masks = build_rows(stage)
    models, metrics = model_reports(stage, rows)
    counts = summary(stage, rows, masks, oacetylation, isomer_pairs)
    finished = _now()
    provenance = {
        "software": "ganglioside-rt-check",
        "version": __version__,
        "input": table.source_info(),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_seconds": round(time.perf_counter() - clock, 4),
        "python": platform.python_version(),
        "libraries": _library_versions(),
    }
    return AnalysisResult(
        rows=rows,
        models=models,
        metrics=metrics,
        fragments=fragments.pairs,
        oacetylation=oacetylation,
        isomer_pairs=isomer_pairs,
        issues=list(table.issues),
        summary=counts,
        parameters=params.to_dict(),
        provenance=provenance,
        extra_columns=list(table.extra_columns),
        logp_checks=stage.logp.table,
    )


def _oac_notes(oacetylation: pd.DataFrame) -> dict[int, str]:
    inconsistent = oacetylation[oacetylation["verdict"].str.startswith("inconsistent")]
    return {
        int(row): f"{verdict} (row {base})"
        for row, verdict, base in zip(
            inconsistent["oac_row"], inconsistent["verdict"], inconsistent["base_row"], strict=True
        )
    }


@functools.cache
def _library_versions() -> dict[str, str]:
    """Versions of the numerical libraries the result depends on (read without importing them)."""
    return {name: importlib.metadata.version(name) for name in ("numpy", "pandas", "scipy")}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
