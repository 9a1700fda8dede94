"""Choose training recipes without the test subjects: run a spec's configurations on the training subjects
only, a seeded quarter of them standing in for the test split.

Usage:
  python benchmarks/validate_spec.py SPEC [--data-dir ../shared/data] [--repeats 2] [--out DIR]
         [--only LABEL ...]

Every configuration's runs go to the results folder OUT/<label>/ after each run (an interrupted call resumes).
Prints one JSON line per configuration: mean ± std validation accuracy (%) and seconds per fit. The spec's own
test subjects are removed before anything else happens, so nothing chosen here has seen them.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from seeded_runs import summary_dict, train_repeats

from harlab.data.datasets import load_dataset
from harlab.experiments.spec import load_spec

VALIDATION_FRACTION = 0.25
VALIDATION_SEED = 1000  # not a seed any run uses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", type=Path)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=None, help="configuration labels to run")
    parser.add_argument("--out", type=Path, default=Path("results/validation"))
    args = parser.parse_args()

    spec = load_spec(args.spec)
    data = load_dataset(spec.dataset or "hapt", args.data_dir, **spec.dataset_options)
    train, _ = data.split()
    subjects = np.unique(train.subject)
    count = round(VALIDATION_FRACTION * len(subjects))
    validation = tuple(sorted(np.random.default_rng(VALIDATION_SEED).choice(subjects, count, replace=False).tolist()))
    stand_in = replace(train, test_subjects=validation, test_mask=None)
    print(f"{len(subjects)} training subjects; validating on {list(validation)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for configuration in spec.configurations():
        if args.only and configuration.label not in args.only:
            continue
        config = configuration.config.model_copy(update={"repeats": args.repeats})
        name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", configuration.label)
        results = train_repeats(stand_in, config, args.out / name, f"{spec.name}-validation",
                                on_run=lambda run, label=configuration.label: print(
                                    f"  {label} #{run.repeat}: {run.accuracy * 100:.2f} ({run.fit_seconds:.1f} s)",
                                    flush=True))
        fits = [run["fit_seconds"] for run in results.store.rows()]
        print(json.dumps({"configuration": configuration.label,
                          **{k: round(v, 2) for k, v in summary_dict(results).items()},
                          "fit_s": round(float(np.mean(fits)), 1)}), flush=True)


if __name__ == "__main__":
    main()
