"""Benchmark: the paper-scale metadata export (`social-reward simulate --metadata-only`).

Writes 1.5M users, 1.7M images and their remix events (no image files) into a temporary
folder and prints the wall time, the peak resident memory and the row counts.
Target: under 3 minutes and under 6 GiB peak memory on the 2-core, 24 GiB machine.

    python bench/simulate_metadata.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

TARGET_SECONDS = 180
TARGET_PEAK_GIB = 6.0
TARGET_REMIXES = 8_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the export here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paper-scale-") as scratch:
        out = args.keep or Path(scratch) / "data"
        command = [
            sys.executable,
            "-m",
            "social_reward.cli",
            "simulate",
            "--metadata-only",
            "--out",
            str(out),
            "--overwrite",
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        # ru_maxrss of the largest finished child, in KiB on Linux.
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        rows = {
            name: pq.read_metadata(out / f"{name}.parquet").num_rows
            for name in ("users", "images", "remixes")
        }
    print("paper-scale metadata export (social-reward simulate --metadata-only)")
    for name, count in rows.items():
        print(f"  {name:<8} {count:>12,}")
    print(f"  wall time   {seconds:8.1f} s    (target < {TARGET_SECONDS} s)")
    print(f"  peak memory {peak_gib:8.2f} GiB  (target < {TARGET_PEAK_GIB} GiB)")
    met = (
        seconds < TARGET_SECONDS
        and peak_gib < TARGET_PEAK_GIB
        and rows["remixes"] >= TARGET_REMIXES
    )
    print("  targets met" if met else "  TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
