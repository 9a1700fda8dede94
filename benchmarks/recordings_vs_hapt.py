"""Users' recordings path against the built-in one, on real data: every HAPT experiment is exported as a user
would have it (one CSV per experiment: time in s, acc_x..gyro_z, activity name — empty where unlabelled or a
postural transition — and subject), imported with `harlab data import --pipeline uci-har --window 128
--step 64 --rate 50` (UCI HAR's test subjects), and a model is trained R times on both window sets.

Usage:
  python benchmarks/recordings_vs_hapt.py [--data-dir ../shared/data] [--work results/recordings-vs-hapt]
                                          [--model cnn] [--repeats 3] [--epochs N] [--align stretch|label]
                                          [--threads N]

With --align label the imported windows equal the built-in ones exactly; the default (stretch) grid runs
from each recording's start and keeps majority-label windows without unlabelled samples, so the sets differ
in where windows sit. Prints window counts, the largest difference of the windows both cut at the same
place, both accuracies (mean ± std over the repeats) and one JSON line; numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from seeded_runs import summary_dict, train_repeats

from harlab.data import hapt
from harlab.data.datasets import load_dataset
from harlab.data.recordings import ImportOptions, export_recordings, import_recordings
from harlab.training.settings import RepeatConfig

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=REPO / "results" / "recordings-vs-hapt")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's tutorial setting")
    parser.add_argument("--align", choices=["stretch", "label"], default="stretch")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    source = hapt.find_local(args.data_dir / hapt.NAME, "local")
    if source is None:
        raise SystemExit(f"no HAPT copy in {args.data_dir / hapt.NAME}")
    started = time.perf_counter()
    recordings, names = hapt.read_recordings(source)
    files = export_recordings(recordings, {i + 1: name for i, name in enumerate(names[:6])}, args.work / "csv")
    exported = time.perf_counter()
    options = ImportOptions(subject_column="subject", pipeline="uci-har", window=128, step=64, rate=50,
                            classes=list(names[:6]), test_subjects=list(hapt.UCI_HAR_TEST_SUBJECTS), align=args.align)
    imported = import_recordings(files, options, args.work / "dataset")
    import_seconds = time.perf_counter() - exported
    builtin = load_dataset(hapt.NAME, args.data_dir, quiet=True)
    print(f"exported {len(files)} CSV files in {exported - started:.1f} s, imported in {import_seconds:.1f} s")
    print(f"windows: imported {len(imported)}, built-in {len(builtin)} (skipped: {imported.provenance.note or '-'})")
    if args.align == "label":
        print(f"largest difference to the built-in windows: {float(np.abs(imported.X - builtin.X).max()):.2e}")

    config = RepeatConfig(model=args.model, epochs=args.epochs, repeats=args.repeats)
    result = {"align": args.align, "windows": {"imported": len(imported), "builtin": len(builtin)}}
    for label, data in (("imported", imported), ("builtin", builtin)):
        results = train_repeats(data, config, args.work / f"{label}-{args.model}", f"{label}-{args.model}",
                                on_run=lambda run, label=label: print(f"{label} #{run.repeat}: "
                                                                      f"{run.accuracy * 100:.2f}"))
        summary = summary_dict(results)
        print(f"{label}: {summary['mean']:.2f}% (+/-{summary['std']:.2f}, {summary['runs']} runs)")
        result[label] = summary
    print(json.dumps(result))


if __name__ == "__main__":
    main()
