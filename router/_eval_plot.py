"""The cost/quality picture of ``router eval``: single models, the hull, the oracle and the route's curve.

HTML is a self-contained page with an inline SVG (no dependency, opens anywhere); PNG needs
matplotlib (``pip install 'router-sdk[plot]'``).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from router._eval import Point, Report

_W, _H, _PAD = 820, 480, 64
_RIGHT = 150  # room for the labels of the costliest models


def _scale(report: Report) -> tuple[float, float, float, float]:
    points = [*report.singles, report.oracle, report.result.point, *(r.point for r in report.sweep)]
    costs = [max(p.cost_per_1k, 1e-9) for p in points]
    qualities = [p.quality for p in points]
    low_c, high_c = math.log10(min(costs)), math.log10(max(costs))
    if high_c - low_c < 1e-6:
        low_c, high_c = low_c - 0.5, high_c + 0.5
    low_q, high_q = min(qualities), max(qualities)
    margin = max((high_q - low_q) * 0.08, 0.01)
    return low_c - 0.1, high_c + 0.1, max(low_q - margin, 0.0), min(high_q + margin, 1.0)


def svg(report: Report) -> str:
    low_c, high_c, low_q, high_q = _scale(report)

    def x(cost: float) -> float:
        return _PAD + (math.log10(max(cost, 1e-9)) - low_c) / (high_c - low_c) * (_W - _PAD - _RIGHT)

    def y(quality: float) -> float:
        return _H - _PAD - (quality - low_q) / (high_q - low_q) * (_H - 2 * _PAD)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _RIGHT}" y2="{_H - _PAD}" stroke="#333"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#333"/>',
        f'<text x="{_W / 2}" y="{_H - 20}" text-anchor="middle">'
        "cost per 1,000 prompts (USD, log scale)</text>",
        f'<text x="18" y="{_H / 2}" text-anchor="middle" transform="rotate(-90 18 {_H / 2})">quality</text>',
        f'<text x="{_W / 2}" y="24" text-anchor="middle" font-size="15">route {html.escape(report.route)}: '
        f"{report.rows:,} prompts</text>",
    ]
    for decade in range(math.ceil(low_c), math.floor(high_c) + 1):
        gx = x(10**decade)
        parts.append(
            f'<line x1="{gx:.1f}" y1="{_H - _PAD}" x2="{gx:.1f}" y2="{_H - _PAD + 5}" stroke="#333"/>'
        )
        parts.append(f'<text x="{gx:.1f}" y="{_H - _PAD + 18}" text-anchor="middle">${10**decade:g}</text>')
    for step in range(6):
        q = low_q + (high_q - low_q) * step / 5
        parts.append(f'<text x="{_PAD - 8}" y="{y(q) + 4:.1f}" text-anchor="end">{q:.2f}</text>')
    hull_path = " ".join(f"{x(p.cost_per_1k):.1f},{y(p.quality):.1f}" for p in report.hull)
    parts.append(f'<polyline points="{hull_path}" fill="none" stroke="#999" stroke-dasharray="6 4"/>')
    if report.sweep:
        curve = sorted(report.sweep, key=lambda r: r.point.cost_per_1k)
        path = " ".join(f"{x(r.point.cost_per_1k):.1f},{y(r.point.quality):.1f}" for r in curve)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for p in report.singles:
        parts.append(_dot(x(p.cost_per_1k), y(p.quality), "#555", p.name))
    parts.append(_dot(x(report.oracle.cost_per_1k), y(report.oracle.quality), "#2ca02c", "oracle"))
    result = report.result.point
    parts.append(_dot(x(result.cost_per_1k), y(result.quality), "#d62728", f"route {report.route}", 6))
    legend = [
        ("#999", "zero-router hull (single models mixed)"),
        ("#1f77b4", f"route, {report.swept} swept"),
        ("#d62728", "route as configured"),
        ("#2ca02c", "oracle (cheapest correct model)"),
    ]
    for i, (color, label) in enumerate(legend):
        ly = _PAD + (_H - 2 * _PAD) * 0.45 + 16 * i
        parts.append(f'<rect x="{_W - _RIGHT - 250}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{_W - _RIGHT - 234}" y="{ly}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _dot(cx: float, cy: float, color: str, label: str, radius: int = 4) -> str:
    return (
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{color}">'
        f"<title>{html.escape(label)}</title></circle>"
        f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" font-size="10" fill="{color}">{html.escape(label)}</text>'
    )


def write_plot(report: Report, path: Path) -> None:
    """Write the picture as .html (inline SVG) or .png (matplotlib)."""
    suffix = path.suffix.lower()
    if suffix in {".html", ".htm"}:
        rows = "".join(
            f"<tr><td>{html.escape(p.name)}</td><td>{p.quality:.3f}</td><td>${p.cost_per_1k:.4f}</td></tr>"
            for p in (*report.singles, report.oracle, report.result.point)
        )
        page = (
            "<!doctype html><meta charset='utf-8'><title>router eval</title>"
            "<body style='font-family:sans-serif'>"
            f"{svg(report)}<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            f"<tr><th>model</th><th>quality</th><th>cost / 1k prompts</th></tr>{rows}</table></body>"
        )
        path.write_text(page, encoding="utf-8")
        return
    if suffix != ".png":
        raise ValueError(f"--plot {path}: write .html or .png.")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError(
            "--plot FILE.png needs matplotlib: pip install 'router-sdk[plot]' (or write .html)."
        ) from None
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    axes.set_xscale("log")
    axes.plot(
        [p.cost_per_1k for p in report.hull],
        [p.quality for p in report.hull],
        "--",
        color="#999",
        label="zero-router hull",
    )
    if report.sweep:
        curve = sorted(report.sweep, key=lambda r: r.point.cost_per_1k)
        axes.plot(
            [r.point.cost_per_1k for r in curve],
            [r.point.quality for r in curve],
            "-",
            color="#1f77b4",
            label=f"route, {report.swept} swept",
        )
    for p in report.singles:
        axes.scatter(p.cost_per_1k, p.quality, color="#555", s=18)
        axes.annotate(
            p.name, (p.cost_per_1k, p.quality), fontsize=7, xytext=(4, 3), textcoords="offset points"
        )
    axes.scatter(report.oracle.cost_per_1k, report.oracle.quality, color="#2ca02c", label="oracle")
    point: Point = report.result.point
    axes.scatter(point.cost_per_1k, point.quality, color="#d62728", s=40, label=f"route {report.route}")
    axes.set_xlabel("cost per 1,000 prompts (USD)")
    axes.set_ylabel("quality")
    axes.set_title(f"route {report.route}: {report.rows:,} prompts")
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
