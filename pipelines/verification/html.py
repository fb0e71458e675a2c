"""One self-contained verification page: ``index.html`` with tables, plots and provenance.

Everything the page shows is inside the file: images are embedded as base64 PNG ``data:`` URIs,
the style sheet is inline, there is no script and no external link, so it opens offline (a
browser, a mail attachment, an archived run). Sections, in order: title and notes, the run's
figures with their captions (plots before tables), paired comparisons, one table per score
(method × lead time, ``value [lower, upper]`` when the scores carry bootstrap intervals), then
the run's provenance (a key/value table).
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; } td.key, th.key { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
""".strip()


def png_data_uri(path: str | os.PathLike[str]) -> str:
    """``data:image/png;base64,...`` of a PNG file (``ValueError`` if it is not a PNG)."""
    raw = Path(path).read_bytes()
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{os.fspath(path)} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def _cell(value: float, lower: float | None = None, upper: float | None = None) -> str:
    def fmt(x: float) -> str:
        return "–" if x is None or not math.isfinite(x) else f"{x:.4g}"

    if lower is None or upper is None or not (math.isfinite(lower) and math.isfinite(upper)):
        return fmt(value)
    return f"{fmt(value)} <small>[{fmt(lower)}, {fmt(upper)}]</small>"


def score_tables(scores: pd.DataFrame) -> list[tuple[str, str]]:
    """One HTML table per (variable, score): rows method × threshold/scale, a column per lead.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``scores.csv`` rows; ``lower``/``upper`` columns (optional) are shown as intervals.

    Returns
    -------
    list of (heading, table html)
    """
    has_bands = {"lower", "upper"} <= set(scores.columns)
    tables = []
    for (variable, score), block in scores.groupby(["variable", "score"], sort=False):
        leads = sorted(block["lead_time_minutes"].unique())
        head = ["method", "threshold", "scale", *(f"+{m:g} min" for m in leads)]
        rows = [
            "<tr>"
            + "".join(
                f'<th class="key">{html.escape(h)}</th>' if i < 3 else f"<th>{html.escape(h)}</th>"
                for i, h in enumerate(head)
            )
            + "</tr>"
        ]
        keys = ["method", "threshold", "scale"]
        for key, line in block.groupby(keys, sort=False, dropna=False):
            method, threshold, scale = key
            by_lead = line.set_index("lead_time_minutes")
            cells = []
            for m in leads:
                if m not in by_lead.index:
                    cells.append("–")
                    continue
                row = by_lead.loc[m]
                lo = float(row["lower"]) if has_bands else None
                hi = float(row["upper"]) if has_bands else None
                cells.append(_cell(float(row["value"]), lo, hi))
            labels = [
                html.escape(str(method)),
                "" if pd.isna(threshold) else f"{threshold:g}",
                "" if pd.isna(scale) else f"{scale:g}",
            ]
            rows.append(
                "<tr>"
                + "".join(f'<td class="key">{v}</td>' for v in labels)
                + "".join(f"<td>{c}</td>" for c in cells)
                + "</tr>"
            )
        tables.append((f"{score} — {variable}", "<table>" + "".join(rows) + "</table>"))
    return tables


def frame_table(frame: pd.DataFrame, float_digits: int = 4) -> str:
    """A plain HTML table of ``frame`` (no index), numbers to ``float_digits`` digits."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if v is None:
                cells.append("–")
            elif isinstance(v, float | np.floating):
                cells.append("–" if not math.isfinite(v) else f"{v:.{float_digits}g}")
            else:
                cells.append(html.escape(str(v)))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_html(
    path: str | os.PathLike[str],
    title: str,
    scores: pd.DataFrame,
    notes: Sequence[str] = (),
    provenance: Mapping[str, object] | None = None,
    figures: Sequence[tuple[str, str | os.PathLike[str]]] = (),
    comparisons: pd.DataFrame | None = None,
) -> str:
    """Write the self-contained verification page.

    Parameters
    ----------
    path : str or path
        The ``index.html`` to write (its folder must exist).
    title : str
        Page title.
    scores : pandas.DataFrame
        ``scores.csv`` rows (``method, score, variable, threshold, scale, lead_time_minutes,
        value`` and optionally ``lower, upper``).
    notes : sequence of str
        Bullet points under the title (plain text, escaped).
    provenance : mapping, optional
        What produced the numbers (checkpoint, period, windows, commit, seed ...).
    figures : sequence of (caption, png path)
        Embedded in order as base64 PNG.
    comparisons : pandas.DataFrame, optional
        Paired differences (any columns), shown as a table.

    Returns
    -------
    str
        ``path``.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if figures:
        parts.append("<h2>Figures</h2>")
    for caption, png in figures:
        parts.append(
            f'<figure><img src="{png_data_uri(png)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if comparisons is not None and len(comparisons):
        parts.append("<h2>Paired comparisons</h2>" + frame_table(comparisons))
    parts.append("<h2>Scores</h2>")
    for heading, table in score_tables(scores):
        parts.append(f"<h3>{html.escape(heading)}</h3>{table}")
    if provenance:
        rows = "".join(
            f'<tr><td class="key">{html.escape(str(k))}</td>'
            f'<td class="key">{html.escape(str(v))}</td></tr>'
            for k, v in provenance.items()
        )
        parts.append(f"<h2>Provenance</h2><table>{rows}</table>")
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts) + "\n", encoding="utf-8")
    return os.fspath(path)
