"""Reading a large MS-DIAL alignment export: 10,000 features × 20 samples.

    python benchmarks/read_exports.py [--features 10000] [--samples 20] [--repeat 3]

Writes an MS-DIAL 5 alignment export (tab, CRLF, the 35 metadata columns, four file-metadata
rows, 20 Sample files, class averages and deviations) of generated ganglioside features, then
times `analysis.reader.read_table` (recognition, sample mean, skipped rows) and `load_table`
(read + validate, what the upload check does) in this process. Prints the best and median of
`--repeat` runs. Target (docs/performance.md): reading ≤ 2 s.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.pipeline import load_table  # noqa: E402
from analysis.reader import read_table  # noqa: E402
from tests.layout_fixtures import MSDIAL5_METADATA  # noqa: E402

HEADS = ["GM3", "GM2", "GM1", "GD3", "GD1a", "GD1b", "GT1b", "GQ1b"]


def export(features: int, samples: int) -> bytes:
    files = [f"Brain_{i + 1}" for i in range(samples)]
    pad = [""] * (len(MSDIAL5_METADATA) - 1)
    rows = [
        [*pad, "Class", *(["Brain"] * samples), "NA", "NA"],
        [*pad, "File type", *(["Sample"] * samples), "NA", "NA"],
        [*pad, "Injection order", *map(str, range(1, samples + 1)), "NA", "NA"],
        [*pad, "Batch ID", *(["1"] * samples), "Average", "Stdev"],
        [*MSDIAL5_METADATA, *files, "Brain", "Brain"],
    ]
    for number in range(features):
        head = HEADS[number % len(HEADS)]
        carbons, bonds = 32 + number % 14, number % 3
        name = f"{head} {carbons}:{bonds};O2" if number % 10 else "Unknown"
        cells = dict.fromkeys(MSDIAL5_METADATA, "null")
        cells |= {
            "Alignment ID": str(number),
            "Average Rt(min)": f"{5 + (number % 400) * 0.04:.3f}",
            "Metabolite name": name,
            "MS/MS matched": "True" if number % 3 == 0 else "False",
        }
        areas = [str(100_000 + (number * 7919 + i * 104729) % 900_000) for i in range(samples)]
        rows.append([*cells.values(), *areas, "500000", "1000"])
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("ascii")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = export(args.features, args.samples)
    print(f"MS-DIAL alignment export: {args.features:,} features × {args.samples} samples, {len(data) / 1e6:.1f} MB")
    for label, step in (("read_table", read_table), ("load_table (read + validate)", load_table)):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            table = step(data, filename="Area_0.txt")
            times.append(time.perf_counter() - started)
        rows = len(table.records) if hasattr(table, "records") else table.n_rows
        print(f"{label:30s} best {min(times):.2f} s  median {statistics.median(times):.2f} s  ({rows:,} rows kept)")


if __name__ == "__main__":
    main()
