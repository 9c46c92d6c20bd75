"""One evaluation run -> a JSON with every number and a self-contained HTML page.

Plots are drawn with matplotlib (Agg), written beside the JSON as PNG and SVG, and embedded
in the HTML as base64 PNG so the page is one file that opens anywhere offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biomatch.evaluation import metrics

Figure = Any  # matplotlib.figure.Figure (matplotlib ships no complete type hints)


def _figure(title: str) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(6, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    return figure, axes


def det_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """DET as in NIST reports: FNMR against FMR, both on log axes."""
    figure, axes = _figure(title)
    floor, fnmr_floor = 1.0, 1.0
    for label, (genuine, impostor) in curves.items():
        _, fmr, fnmr = metrics.det_curve(genuine, impostor)
        keep = (fmr > 0) & (fnmr > 0)
        if not np.any(keep):  # no threshold makes both errors: nothing to draw on log axes
            label = f"{label} (no threshold with both error types)"
        axes.plot(fmr[keep], fnmr[keep], label=label)
        floor = min(floor, 1.0 / max(len(impostor), 1))
        fnmr_floor = min(fnmr_floor, 1.0 / max(len(genuine), 1))
    for target in (1e-2, 1e-3, 1e-4):
        if target >= floor:
            axes.axvline(target, color="grey", linestyle=":", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(floor, 1)
    axes.set_ylim(fnmr_floor, 1)
    axes.set_xlabel("False match rate (FMR)")
    axes.set_ylabel("False non-match rate (FNMR)")
    axes.legend()
    return figure


def score_histogram(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> Figure:
    figure, axes = _figure("Score distributions")
    finite_g, finite_i = genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]
    both = np.concatenate([finite_g, finite_i])
    bins = np.linspace(both.min(), both.max(), 80) if len(both) else 10
    axes.hist(finite_i, bins=bins, density=True, alpha=0.6, label="impostor (non-mated)")
    axes.hist(finite_g, bins=bins, density=True, alpha=0.6, label="genuine (mated)")
    axes.axvline(threshold, color="black", linestyle="--", label="operating threshold")
    axes.set_yscale("log")
    axes.set_xlabel("score")
    axes.set_ylabel("density")
    axes.legend()
    return figure


def cmc_plot(cmc: Sequence[float]) -> Figure:
    figure, axes = _figure("Cumulative match characteristic (closed set)")
    axes.plot(np.arange(1, len(cmc) + 1), cmc, marker="o", markersize=3)
    axes.set_xlabel("rank")
    axes.set_ylabel("identification rate")
    return figure


def expansion_plot(rows: Sequence[dict[str, Any]]) -> Figure:
    figure, axes = _figure("Open set at a fixed threshold as distractors are added")
    sizes = [row["gallery_size"] for row in rows]
    axes.plot(sizes, [row["fpir"] for row in rows], marker="o", label="FPIR")
    axes.plot(sizes, [row["fnir"] for row in rows], marker="s", label="FNIR")
    axes.set_xlabel("gallery size (enrolled + distractors)")
    axes.set_ylabel("rate")
    axes.legend()
    return figure


def write(result: dict[str, Any], json_path: Path, html_path: Path | None, figures: Any) -> None:
    """Writes the JSON, the plots (PNG and SVG beside the JSON) and the HTML page."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    embedded: dict[str, str] = {}
    plots: dict[str, dict[str, str]] = {}
    for name, figure in figures.items():
        stem = json_path.with_name(f"{json_path.stem}_{name}")
        figure.savefig(stem.with_suffix(".svg"))
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=110)
        stem.with_suffix(".png").write_bytes(png.getvalue())
        embedded[name] = base64.b64encode(png.getvalue()).decode()
        plots[name] = {"png": str(stem.with_suffix(".png")), "svg": str(stem.with_suffix(".svg"))}
    result["plots"] = plots
    json_path.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_html(result, embedded))


def _jsonable(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
h2{border-bottom:1px solid #999}img{max-width:100%}.note{color:#555;font-size:13px}"""


def render_html(result: dict[str, Any], images: dict[str, str]) -> str:
    title = html.escape(str(result.get("title", "BioMatch evaluation report")))
    parts = [f"<!doctype html><meta charset='utf-8'><title>{title}</title>"]
    parts.append(f"<style>{STYLE}</style><h1>{title}</h1>")
    parts.append(
        "<p class='note'>Error rates in ISO/IEC 19795-1 terms; intervals are 95%. A rate "
        "marked 'not enough data' was not measurable on this sample (rule of 3).</p>"
    )
    for name, data in images.items():
        parts.append(f"<figure><img alt='{name}' src='data:image/png;base64,{data}'></figure>")
    for key, value in result.items():
        if key in {"title", "plots"}:
            continue
        parts.append(f"<h2>{html.escape(key)}</h2>{_html_value(value)}")
    return "\n".join(parts) + "\n"


def _html_value(value: Any) -> str:
    if isinstance(value, dict):
        return _html_mapping(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return _html_rows(value)
    return f"<p>{_cell(value)}</p>"


def _html_mapping(mapping: dict[str, Any]) -> str:
    rows, nested = [], []
    for key, value in mapping.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            nested.append(f"<h3>{html.escape(key)}</h3>{_html_value(value)}")
        else:
            rows.append(f"<tr><th>{html.escape(key)}</th><td class='n'>{_cell(value)}</td></tr>")
    table = f"<table>{''.join(rows)}</table>" if rows else ""
    return table + "".join(nested)


def _html_rows(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td class='n'>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.6g}"
    if isinstance(value, list) and len(value) > 12:
        shown = ", ".join(_cell(v) for v in value[:12])
        return f"[{shown}, ... {len(value)} values]"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return "n/a" if value is None else html.escape(str(value))
