"""The demo's picture: cost per feature (routed against one strong model for all) and where requests went.

The SVG is written by hand (no dependency; the HTML page embeds it, so it opens anywhere offline);
a PNG is added when matplotlib is installed (``pip install 'router-sdk[plot]'``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Final

from router._cli_grammar import usd_text

if TYPE_CHECKING:
    from router._demo import Summary, Totals

_W: Final = 860
_BAR_H: Final = 22
_LABEL_W: Final = 190
_ROUTED: Final = "#2f7d32"
_BASELINE: Final = "#b0b7c3"
_REQUESTS: Final = "#3565a8"


def _bars(
    title: str, rows: list[tuple[str, list[tuple[float, str, str]]]], top: float, scale_max: float
) -> tuple[list[str], float]:
    """Horizontal bars: each row has one or more (value, colour, text) bars; returns the parts and the
    y below the chart."""
    parts = [f'<text x="16" y="{top + 18:.0f}" font-size="16" font-weight="bold">{html.escape(title)}</text>']
    y = top + 34
    width = _W - _LABEL_W - 200
    for label, bars in rows:
        parts.append(
            f'<text x="{_LABEL_W - 8}" y="{y + 15:.0f}" font-size="13" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
        for value, colour, text in bars:
            length = max(1.0, value / scale_max * width) if scale_max > 0 else 1.0
            parts.append(
                f'<rect x="{_LABEL_W}" y="{y:.0f}" width="{length:.1f}" height="{_BAR_H - 4}"'
                f' fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{_LABEL_W + length + 6:.1f}" y="{y + 14:.0f}" font-size="12">'
                f"{html.escape(text)}</text>"
            )
            y += _BAR_H
        y += 8
    return parts, y


def svg(summary: Summary, *, baseline: str) -> str:
    """Cost per feature (routed, and ``baseline`` for every request) and requests per model."""
    features = sorted(summary.by_feature.items(), key=lambda kv: -kv[1].baseline_usd)
    models = sorted(summary.by_model.items(), key=lambda kv: -kv[1].requests)
    high = max((t.baseline_usd for _, t in features), default=0.0) or max(
        (t.cost_usd for _, t in features), default=0.0
    )
    cost_rows = [
        (
            name,
            [
                (t.cost_usd, _ROUTED, f"routed {usd_text(t.cost_usd)}"),
                (t.baseline_usd, _BASELINE, f"all {baseline} {usd_text(t.baseline_usd)}"),
            ],
        )
        for name, t in features
    ]
    first, y = _bars("Cost per feature", cost_rows, 0, high)
    most = max((t.requests for _, t in models), default=0)
    request_rows = [
        (name, [(float(t.requests), _REQUESTS, f"{t.requests} requests, {usd_text(t.cost_usd)}")])
        for name, t in models
    ]
    second, y = _bars("Where requests went", request_rows, y + 10, float(most))
    total = summary.total
    note = (
        f"{total.requests} requests: {usd_text(total.cost_usd)} routed,"
        f" {usd_text(total.baseline_usd)} if every request had gone to {baseline}"
        " (same token counts; cost only, answer quality not compared)"
    )
    height = y + 30
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height:.0f}"'
            f' viewBox="0 0 {_W} {height:.0f}" font-family="sans-serif">',
            f'<rect width="{_W}" height="{height:.0f}" fill="white"/>',
            *first,
            *second,
            f'<text x="16" y="{y + 14:.0f}" font-size="12" fill="#444">{html.escape(note)}</text>',
            "</svg>",
        ]
    )


def page(summary: Summary, *, baseline: str, quality: str | None = None) -> str:
    """The picture in a self-contained page; ``quality``: the demo's equal-quality headline, under it."""
    paragraph = f"<p style='max-width:760px'>{html.escape(quality)}</p>\n" if quality else ""
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>router demo</title></head>"
        "<body style='font-family:sans-serif'>\n<h1>router demo</h1>\n"
        f"{svg(summary, baseline=baseline)}\n{paragraph}</body></html>\n"
    )


def _png(summary: Summary, path: Path, *, baseline: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    features: list[tuple[str, Totals]] = sorted(
        summary.by_feature.items(), key=lambda kv: -kv[1].baseline_usd
    )
    models: list[tuple[str, Totals]] = sorted(summary.by_model.items(), key=lambda kv: -kv[1].requests)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [name for name, _ in features]
    positions = range(len(names))
    left.barh(
        [p - 0.2 for p in positions], [t.cost_usd for _, t in features], 0.4, label="routed", color=_ROUTED
    )
    left.barh(
        [p + 0.2 for p in positions],
        [t.baseline_usd for _, t in features],
        0.4,
        label=f"all {baseline}",
        color=_BASELINE,
    )
    left.set_yticks(list(positions), names)
    left.invert_yaxis()
    left.set_xlabel("USD")
    left.set_title("Cost per feature")
    left.legend()
    right.barh([name for name, _ in models], [t.requests for _, t in models], color=_REQUESTS)
    right.invert_yaxis()
    right.set_xlabel("requests")
    right.set_title("Where requests went")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_pictures(
    summary: Summary, folder: Path, *, baseline: str, quality: str | None = None
) -> list[Path]:
    """``router-demo.html`` and ``router-demo.svg`` in ``folder``, and ``router-demo.png`` with matplotlib."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("router-demo.html", page(summary, baseline=baseline, quality=quality)),
        ("router-demo.svg", svg(summary, baseline=baseline)),
    ):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    png = folder / "router-demo.png"
    if _png(summary, png, baseline=baseline):
        written.append(png)
    return written
