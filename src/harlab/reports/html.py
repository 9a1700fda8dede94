"""A self-contained HTML report: one file, figures embedded as PNG data, no network needed to view it.
Every figure is also written beside it as PNG and SVG."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from harlab.environment import now_iso
from harlab.evaluation.statistics import Summary
from harlab.files import atomic_write_bytes
from harlab.reports.analysis import ExperimentResult, number, rank_test_line
from harlab.reports.plots import (
    accuracy_boxplot,
    close_figure,
    confusion_figure,
    cost_figure,
    critical_difference_diagram,
    figure_bytes,
    learning_curves,
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #2a6fb0; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef3f8; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3rem 0; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .8rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #555; }
.note { color: #555; font-size: .9rem; }
"""


class HtmlReport:
    """Build a report section by section, then `write` it."""

    def __init__(self, title: str, figures_dir: Path):
        self.title = title
        self.figures_dir = figures_dir
        self.parts: list[str] = []

    def heading(self, text: str, anchor: str, level: int = 2) -> None:
        self.parts.append(f'<h{level} id="{html.escape(anchor)}">{html.escape(text)}</h{level}>')

    def paragraph(self, text: str, css: str = "") -> None:
        self.parts.append(f'<p class="{css}">{html.escape(text)}</p>' if css else f"<p>{html.escape(text)}</p>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> None:
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        self.parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def preformatted(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def figure(self, figure: Figure, name: str, caption: str) -> None:
        """Embed `figure` and write it as figures/NAME.png and .svg."""
        try:
            png = figure_bytes(figure, "png")
            atomic_write_bytes(self.figures_dir / f"{name}.png", png)
            atomic_write_bytes(self.figures_dir / f"{name}.svg", figure_bytes(figure, "svg"))
        finally:
            close_figure(figure)
        data = base64.b64encode(png).decode()
        self.parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                          f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def write(self, path: Path) -> None:
        document = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>"
                    f"<h1>{html.escape(self.title)}</h1>"
                    f'<p class="note">written by harlab on {html.escape(now_iso())}</p>'
                    + "\n".join(self.parts) + "</body></html>\n")
        atomic_write_bytes(path, document.encode("utf-8"))


SIGNIFICANT = {True: "yes", False: "no", None: "n/a"}


def _ci(s: Summary) -> str:
    return f"[{s.ci_low:.2f}, {s.ci_high:.2f}]" if s.ci_low is not None else "n/a"


def add_experiment(report: HtmlReport, result: ExperimentResult, level: int = 2, channels: Path | None = None) -> None:
    """Spec, summary with CIs, ranking with cost and rank test, pairwise tests, boxplot, and per configuration the
    median run's confusion matrix, per-class scores and learning curves."""
    name = result.name
    sub = level + 1
    if level > 2:
        report.heading(f"Experiment {name}", name, level - 1)
    if result.spec.description:
        report.paragraph(result.spec.description)
    provenance = result.dataset.get("provenance", {})
    report.paragraph(f"{result.finished} of {result.planned} runs finished; data: {provenance.get('dataset')} "
                     f"({result.dataset.get('n_train')} training, {result.dataset.get('n_test')} test windows; "
                     f"source {provenance.get('source')}, sha256 {provenance.get('sha256')}).", "note")
    copied = sorted({row["copied_from"] for c in result.configurations for row in c.rows if "copied_from" in row})
    if copied:
        report.paragraph(f"Runs with the same configuration and seed as in experiment(s) {', '.join(copied)} were "
                         "trained once and are shared (training is deterministic for a given seed).", "note")

    report.heading("Spec", f"{name}-spec", sub)
    report.preformatted(json.dumps(result.spec.model_dump(mode="json"), indent=2))

    report.heading("Summary", f"{name}-summary", sub)
    rows = [(c.label, c.summary.runs, f"{c.summary.mean:.3f}", f"{c.summary.std:.3f}", _ci(c.summary),
             f"{c.tutorial:.1f}" if c.tutorial is not None else "", f"{c.macro_f1:.2f}",
             number(c.balanced_accuracy, ".2f"), f"{c.fit_seconds:.1f}") for c in result.configurations]
    report.table(("configuration", "runs", "mean accuracy %", "std", "95% CI of the mean", "tutorial %",
                  "macro-F1 %", "balanced accuracy %", "s per fit"), rows,
                 "Test accuracy over seeded runs (std as the tutorial: np.std)")
    if result.spec.tutorial.trend:
        report.paragraph(f"The tutorial's finding: {result.spec.tutorial.trend}", "note")

    if len(result.configurations) > 1:
        add_ranking(report, result, sub)

    if result.comparisons:
        report.heading("Pairwise tests", f"{name}-comparisons", sub)
        report.table(("pair", "difference (points)", "Welch p", "Holm p", "significant (Holm, α = 0.05)",
                      "verdict"),
                     [(f"{c.b} vs {c.a}", f"{c.difference:+.2f}", f"{c.p:.3g}", f"{c.p_holm:.3g}",
                       SIGNIFICANT[c.significant()], c.verdict()) for c in result.comparisons],
                     "Welch's t-test of every pair of configurations, p-values Holm-corrected for the number of pairs")

    report.heading("Accuracy per configuration", f"{name}-boxplot", sub)
    report.figure(accuracy_boxplot({c.label: c.accuracies() for c in result.configurations}, name,
                                   {c.label: c.tutorial for c in result.configurations if c.tutorial is not None}),
                  f"{name}-boxplot", "Test accuracy of every run; triangle: mean; red diamond: the tutorial's mean.")
    if channels is not None and channels.exists():
        report.parts.append(f'<figure><img alt="per-channel histograms" src="data:image/png;base64,'
                            f'{base64.b64encode(channels.read_bytes()).decode()}"><figcaption>Per-channel '
                            "distribution of the training windows (overlap removed).</figcaption></figure>")

    classes = result.dataset.get("classes", [])
    report.heading("Confusion matrices (median run)", f"{name}-confusion", sub)
    for i, c in enumerate(result.configurations):
        run = c.median_run()
        report.figure(confusion_figure(run["confusion"], classes, f"{c.label}: repeat {run['repeat']}, "
                                       f"{run['accuracy'] * 100:.2f}%"), f"{name}-confusion-{i}",
                      f"{c.label}: the run with the median accuracy (repeat {run['repeat']}, seed {run['seed']}).")

    report.heading("Per-class precision, recall and F1 (mean over runs)", f"{name}-per-class", sub)
    for c in result.configurations:
        per_class = c.per_class()
        report.table(("class", "precision", "recall", "F1"),
                     [(k, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}") for k, v in
                      per_class.items()], c.label)

    report.heading("Learning curves", f"{name}-learning-curves", sub)
    for i, c in enumerate(result.configurations):
        report.figure(learning_curves([row["history"] for row in c.rows], c.label), f"{name}-curves-{i}",
                      f"{c.label}: loss and accuracy per epoch of every run.")


def add_ranking(report: HtmlReport, result: ExperimentResult, level: int) -> None:
    """The configurations ranked by mean accuracy with their cost, Friedman's test and Nemenyi's critical
    difference of the mean ranks over the repeats as a diagram, and (from three configurations on) accuracy
    against training time."""
    name, ranks = result.name, result.ranks
    report.heading("Ranking", f"{name}-ranking", level)
    report.table(("rank", "configuration", "accuracy % (mean ± std)", "95% CI", "macro-F1 %", "s per fit",
                  "parameters", "inference windows/s", "mean rank over repeats"),
                 [(place, c.label, f"{c.summary.mean:.3f} ± {c.summary.std:.3f}", _ci(c.summary), f"{c.macro_f1:.2f}",
                   f"{c.fit_seconds:.1f}", f"{c.parameters:,}", number(c.inference_windows_per_second),
                   number(ranks.mean_ranks.get(c.label), ".2f")) for place, c in enumerate(result.ranking(), 1)],
                 "Configurations by mean test accuracy; mean rank: configurations ranked within each repeat "
                 "(same seed), 1 = best")
    report.paragraph(rank_test_line(ranks), "note")
    if ranks.cd is not None:
        report.figure(critical_difference_diagram(ranks.mean_ranks, ranks.cd, ranks.groups(), name),
                      f"{name}-critical-difference", f"Critical-difference diagram: mean rank over {ranks.blocks} "
                      f"repeats; configurations joined by a bar are not significantly different (Nemenyi, "
                      f"α = {ranks.alpha}, CD = {ranks.cd:.2f}); meaningful where Friedman's test rejects equal "
                      "ranks.")
    if len(result.configurations) > 2:
        report.figure(cost_figure({c.label: (c.fit_seconds, c.summary.mean, *_ci_ends(c.summary))
                                   for c in result.configurations}, name),
                      f"{name}-cost", "Mean test accuracy with its 95% CI against the mean training time per fit.")


def _ci_ends(summary: Summary) -> tuple[float, float]:
    return (summary.ci_low, summary.ci_high) if summary.ci_low is not None else (summary.mean, summary.mean)


def add_environment(report: HtmlReport, environment: dict, anchor: str = "environment") -> None:
    report.heading("Environment", anchor)
    report.preformatted(json.dumps(environment, indent=2))


def experiment_report(result: ExperimentResult, directory: Path) -> Path:
    """DIR/report.html for one experiment, figures in DIR/figures/."""
    report = HtmlReport(f"harlab experiment: {result.name}", directory / "figures")
    add_experiment(report, result, channels=directory / "channels.png")
    add_environment(report, result.environment)
    path = directory / "report.html"
    report.write(path)
    return path


def reproduce_report(results: list[ExperimentResult], directory: Path, note: str = "") -> Path:
    """DIR/report.html: an overview of every tutorial experiment beside the tutorial's figures, then each
    experiment in full."""
    report = HtmlReport("harlab reproduce: the tutorials' experiments", directory / "figures")
    if note:
        report.paragraph(note, "note")
    report.heading("Overview", "overview")
    rows = []
    for result in results:
        for c in result.configurations:
            s = c.summary
            gap = f"{s.mean - c.tutorial:+.2f}" if c.tutorial is not None else ""
            rows.append((result.name, c.label, s.runs, f"{s.mean:.2f} ± {s.std:.2f}", _ci(s),
                         f"{c.tutorial:.1f}" if c.tutorial is not None else "", gap, f"{c.fit_seconds:.1f}"))
    report.table(("experiment", "configuration", "runs", "accuracy % (mean ± std)", "95% CI", "tutorial %",
                  "difference", "s per fit"), rows)
    for result in results:
        if result.spec.tutorial.trend:
            report.paragraph(f"{result.name} — the tutorial's finding: {result.spec.tutorial.trend}", "note")
    for result in results:
        add_experiment(report, result, level=3, channels=directory / result.name / "channels.png")
    if results:
        add_environment(report, results[0].environment)
    path = directory / "report.html"
    report.write(path)
    return path
