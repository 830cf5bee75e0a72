"""Engine speed, memory and accuracy figures.

    python benchmarks/engine.py [--sizes 1000,10000,100000,1000000] [--repeat 30]
        [--crowded-sizes 10000,100000,1000000] [--parts sample,truth,scaling,crowded]

1. The real sample: wall time of read + validate + analyse in process after import (median
   of --repeat runs after one warm-up), LOO RMSEP over anchors, Q², LOHGO RMSEP, and the
   share of rows with a finite prediction interval.
2. Scaling on the synthetic generator: each size runs in a fresh process that reads a CSV
   written beforehand, so the time is a cold run (no cached names) and the peak resident
   memory is the engine's own (ru_maxrss of that process; the import baseline is shown too).
3. The same on crowded tables (`analysis.synthetic.crowded_table`: few names on whole
   minutes), the worst case for the pairwise searches.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "porcine_brain_gangliosides.csv"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would carry the parent's peak over exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(path: str) -> None:
    """Child process: analyse one file cold and print timings as JSON."""
    from analysis.pipeline import run_file

    baseline = peak_rss_mb()
    started = time.perf_counter()
    steps: list[tuple[float, str]] = []
    result = run_file(Path(path), progress=lambda p, s, m: steps.append((time.perf_counter() - started, s)))
    elapsed = time.perf_counter() - started
    first_at = {}
    for at, step in steps:
        first_at.setdefault(step, at)
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mb": peak_rss_mb(),
                "baseline_rss_mb": baseline,
                "rows": len(result.rows),
                "steps": first_at,
            }
        )
    )


def sample_figures(data: Path, repeat: int) -> None:
    from analysis.pipeline import run_file

    payload = data.read_bytes()
    result = run_file(payload, filename=data.name)  # warm-up: imports, caches, BLAS threads
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run_file(payload, filename=data.name)
        times.append(time.perf_counter() - started)
    metrics = result.metrics
    counts = result.summary["counts"]
    print(f"real sample ({data.name}, {len(result.rows)} rows)")
    print(
        f"  engine wall time, median of {repeat}: {statistics.median(times) * 1e3:.1f} ms "
        f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})"
    )
    summary = result.summary
    print(
        f"  RMSEP over {metrics['n_anchors_used']} anchors, leave one out {metrics['loo_rmsep']:.3f} min, leave its "
        f"prefix out {metrics['lopo_rmsep']:.3f} ({metrics['lopo_n_scored']} scored, interval coverage "
        f"{metrics['lopo_coverage']:.0%}), leave its head group out {metrics['lohgo_rmsep']:.3f} "
        f"({metrics['lohgo_n_scored']} scored, {metrics['lohgo_coverage']:.0%}); every MS/MS-confirmed anchor "
        f"{metrics['loo_rmsep_all_anchors']:.3f}; Q² {metrics['loo_q2']:.4f}"
    )
    print(
        f"  main peaks of names without an anchor inside their 95 % interval: {metrics['pi_coverage_main_peaks']:.1%} "
        f"of {metrics['n_main_peaks_scored']}; rows with an interval {metrics['fraction_with_pi']:.1%}; "
        f"single Log P line LOO RMSEP {metrics['log_p_line_loo_rmsep']:.3f} min"
    )
    print("  statuses: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(
        f"  outliers: {summary['identity_outliers']} identities (main peaks), {summary['extra_peak_outliers']} extra "
        f"peaks, {summary['anchors_inconsistent']} anchors"
    )


def synthetic_truth(sizes: list[int], seeds: range, offset_size: int = 600) -> None:
    """Rule 5 and Rule 1 against the generator's own truth (mean over seeds, range in brackets).

    One size more is run in the calibration world of science.md, where every prefix has its own
    RT offset (SD 0.2 min) that no anchor reveals for a prefix without anchors; the last column
    is the share of clean peaks of such prefixes called outliers.
    """
    from analysis.pipeline import run_file
    from analysis.synthetic import generate_extract

    print(f"\nknown truth (synthetic extracts; mean [min–max] over seeds {seeds.start}–{seeds.stop - 1})")
    print(
        f"{'rows':>8s} {'prefix SD':>9s} {'fragment P':>18s} {'fragment R':>11s} {'outlier P':>18s} "
        f"{'outlier R':>18s}  clean unanchored called"
    )
    for size, offset_sd in [*((size, 0.0) for size in sizes), (offset_size, 0.2)]:
        figures = {"fp": [], "fr": [], "op": [], "or": []}
        called_clean, clean = 0, 0
        for seed in seeds:
            extract = generate_extract(size, seed, prefix_offset_sd=offset_sd)
            rows = run_file(extract.to_csv_bytes(), filename="s.csv").rows.merge(
                extract.truth, on="row", suffixes=("", "_true")
            )
            called, true = rows["status"] == "fragment", rows["kind"] == "fragment"
            figures["fp"].append((called & true).sum() / max(called.sum(), 1))
            figures["fr"].append((called & true).sum() / max(true.sum(), 1))
            out, injected = rows["status"] == "outlier", rows["kind"] == "outlier"
            assessable = rows["status"].isin(["valid", "outlier"])
            figures["op"].append((out & injected).sum() / max(out.sum(), 1))
            figures["or"].append((out & injected).sum() / max((injected & assessable).sum(), 1))
            anchored = set(rows.loc[rows["anchor_true"] & (rows["status"] != "fragment"), "prefix"])
            genuine = (rows["kind"] == "genuine") & assessable & ~rows["prefix"].isin(anchored)
            called_clean += int((genuine & out).sum())
            clean += int(genuine.sum())
        cells = [f"{np.mean(v):.3f} [{min(v):.2f}–{max(v):.2f}]" for v in figures.values()]
        print(
            f"{size:8,d} {offset_sd:9.1f} {cells[0]:>18s} {cells[1][:5]:>11s} {cells[2]:>18s} {cells[3]:>18s}"
            f"  {called_clean} of {clean}"
        )


def scaling(sizes: list[int], crowded: bool = False) -> None:
    from analysis.synthetic import crowded_table, generate_extract

    kind = "crowded tables (48 names on whole minutes)" if crowded else "synthetic extracts"
    print(f"\nscaling ({kind}, cold run in a fresh process)")
    print(f"{'rows':>10s} {'seconds':>8s} {'µs/row':>7s} {'peak RSS MB':>11s} {'(import)':>8s}  slowest steps")
    with tempfile.TemporaryDirectory() as directory:
        for size in sizes:
            path = Path(directory) / f"extract-{size}.csv"
            path.write_bytes(crowded_table(size) if crowded else generate_extract(size, seed=0).to_csv_bytes())
            output = subprocess.run(
                [sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, check=True
            ).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            marks = [*sorted(figures["steps"].items(), key=lambda kv: kv[1]), ("end", figures["seconds"])]
            spans = sorted(((b[1] - a[1], a[0]) for a, b in itertools.pairwise(marks)), reverse=True)
            slowest = ", ".join(f"{name} {span:.2f}s" for span, name in spans[:3])
            print(
                f"{size:10,d} {figures['seconds']:8.2f} {figures['seconds'] / size * 1e6:7.1f} "
                f"{figures['peak_rss_mb']:11.0f} {figures['baseline_rss_mb']:8.0f}  {slowest}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--crowded-sizes", default="10000,100000,1000000", help="sizes of crowded tables")
    parser.add_argument("--truth-sizes", default="300,10000", help="sizes for the known-truth figures")
    parser.add_argument("--parts", default="sample,truth,scaling,crowded", help="which figures to print")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_size(args.one)
        return
    parts = set(args.parts.split(","))
    if "sample" in parts:
        sample_figures(args.data, args.repeat)
    if "truth" in parts:
        synthetic_truth([int(s) for s in args.truth_sizes.split(",") if s], range(6))
    if "scaling" in parts:
        scaling([int(s) for s in args.sizes.split(",") if s])
    if "crowded" in parts:
        scaling([int(s) for s in args.crowded_sizes.split(",") if s], crowded=True)


if __name__ == "__main__":
    main()
