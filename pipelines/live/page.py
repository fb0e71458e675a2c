"""The live page ``DIR/reports/<source>/live.html``: how the issued forecasts did.

Self-contained like the evaluation report (:mod:`pipelines.verification.html`: inline style,
PNG figures as ``data:`` URIs, no script), rebuilt by every verification run from the last
30 days of the verification store. Sections:

1. rolling MSE skill per lead over the last 24 h, 7 d and 30 d against persistence and optical
   flow, each on the init times both were scored for (:mod:`pipelines.live.skill`);
2. skill per init time as a time series;
3. reliability of the probabilistic products (when the store has ``reliability`` rows);
4. the worst recent cases (lowest skill against persistence in the last 7 days), each with a
   map of the observation, SimVP and persistence at the longest lead.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import CHANNEL, INIT_TIME, LEAD_TIME, TIME
from pipelines.live import skill as sk
from pipelines.live.scoring import SIMVP, ScoreConfig
from pipelines.live.store import VerificationStore
from pipelines.verification.html import STYLE, frame_table, png_data_uri

logger = logging.getLogger(__name__)

WINDOWS = ("24h", "7D", "30D")
WORST_CASES = 3  # maps on the page: enough to spot a pattern, few enough to stay a quick read
PAGE_NAME = "live.html"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def skill_table(rows: pd.DataFrame, as_of: pd.Timestamp, references: Sequence[str]) -> pd.DataFrame:
    """Rolling MSE skill of SimVP per lead: one row per (window, reference).

    Returns
    -------
    pandas.DataFrame
        Columns ``window, reference, forecasts, all leads`` and one per lead (``+N min``).
    """
    records = []
    for span in WINDOWS:
        recent = sk.window(rows, as_of, span)
        for reference in references:
            pairs = sk.paired(recent, SIMVP, reference)
            record: dict[str, object] = {
                "window": span,
                "reference": reference,
                "forecasts": sk.entries(pairs),
                "all leads": sk.skill(pairs),
            }
            for lead, value in sk.skill_per_lead(pairs).items():
                record[f"+{lead:g} min"] = value
            records.append(record)
    return pd.DataFrame(records)


def _series_figure(rows: pd.DataFrame, references: Sequence[str], path: Path) -> Path | None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    drawn = False
    for reference in references:
        series = sk.skill_per_init(sk.paired(rows, SIMVP, reference))
        if len(series):
            ax.plot(series.index, series.values, marker=".", label=f"vs {reference}")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_ylabel("MSE skill (all leads)")
    ax.set_xlabel("init time (UTC)")
    ax.legend(loc="lower left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def reliability_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Observed frequency per forecast-probability bin and threshold (pooled over leads)."""
    rel = rows[(rows["score"] == "reliability") & (rows["method"] == SIMVP)]
    if not len(rel):
        return pd.DataFrame(columns=["threshold", "bin", "count", "observed"])
    rel = rel.assign(events=rel["value"] * rel["count"])
    out = rel.groupby(["threshold", "bin"], as_index=False)[["count", "events"]].sum()
    out["observed"] = out["events"] / out["count"]
    return out.drop(columns="events")


def _reliability_figure(table: pd.DataFrame, path: Path) -> Path | None:
    if not len(table):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="k", lw=0.8)
    for threshold, group in table.groupby("threshold"):
        ax.plot(group["bin"], group["observed"], marker="o", label=f"> {threshold:g}")
    ax.set_xlabel("forecast probability")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _case_figure(
    forecasts: xr.Dataset, obs: xr.Dataset, init: pd.Timestamp, value: float, path: Path
) -> Path:
    from pipelines.live.verify import observed_frames, preparation_of

    preparation = preparation_of(forecasts)
    variable = preparation.variables[0]
    entry = forecasts.sel({INIT_TIME: init})
    lead = pd.Timedelta(entry[LEAD_TIME].values[-1])
    frames = observed_frames(obs, preparation, pd.DatetimeIndex([init, init + lead]))
    panels = [
        (f"observed {init + lead:%H:%M}Z", frames.isel({TIME: 1}).sel({CHANNEL: variable})),
        (f"SimVP +{lead.total_seconds() / 60:g} min", entry[variable].isel({LEAD_TIME: -1})),
        ("persistence", frames.isel({TIME: 0}).sel({CHANNEL: variable})),
    ]
    arrays = [np.asarray(a.values, dtype="float64") for _, a in panels]
    top = max(1.0, float(np.nanmax([np.nanmax(a) if np.isfinite(a).any() else 0 for a in arrays])))
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (title, _), array in zip(axes, panels, arrays, strict=True):
        image = ax.imshow(array, vmin=0.0, vmax=top, cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label=str(entry[variable].attrs.get("units", "")))
    fig.suptitle(f"init {init:%Y-%m-%d %H:%M}Z, skill vs persistence {value:.2f}", fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _figure(caption: str, png: Path) -> str:
    return (
        f'<figure><img src="{png_data_uri(png)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def write_live_page(
    source: str,
    paths: DataDir,
    store: VerificationStore,
    as_of: pd.Timestamp,
    forecast_path: str,
    obs_path: str,
    config: ScoreConfig,
    page_name: str = PAGE_NAME,
) -> str:
    """Rebuild ``DIR/reports/<source>/<page_name>`` from the last 30 days of ``store``.

    ``page_name`` is ``live.html`` for the forecast store at the model's own horizon and
    ``live-<N>leads.html`` for ``<source>-<N>leads.zarr``, so the two never overwrite each other.

    Returns
    -------
    str
        Path of the page.
    """
    folder = Path(paths.reports(source))
    figures = folder / Path(page_name).stem
    figures.mkdir(parents=True, exist_ok=True)
    rows = store.read(as_of - pd.Timedelta(WINDOWS[-1]), as_of)
    references = list(config.baselines)
    n_entries = int(rows["init_time"].nunique())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Live verification of {html.escape(source)}</title><style>{STYLE}</style>",
        f"</head><body><h1>Live verification of {html.escape(source)}</h1>",
        "<ul>"
        f"<li>as of {as_of:%Y-%m-%d %H:%M}Z; {n_entries} forecasts verified in the last 30 d</li>"
        "<li>skill = 1 - MSE(SimVP) / MSE(reference), summed over the init times and leads both "
        "were scored on (references recomputed from the observations for the same init times)</li>"
        f"<li>store {html.escape(str(store.path))}</li></ul>",
    ]
    table = skill_table(rows, as_of, references)
    parts.append(_section("Rolling skill per lead", frame_table(table, float_digits=3)))
    series = _series_figure(rows, references, figures / "skill_per_init.png")
    if series is not None:
        parts.append(_section("Skill per init time", _figure("MSE skill per init time", series)))
    rel = reliability_table(rows)
    if len(rel):
        png = _reliability_figure(rel, figures / "reliability.png")
        body = frame_table(rel, float_digits=3) + _figure("reliability (all leads)", png)
        parts.append(_section("Reliability of the probabilities", body))
    parts.append(
        _section("Worst recent cases", _worst_cases(rows, as_of, forecast_path, obs_path, figures))
    )
    parts.append("</body></html>")
    page = folder / page_name
    tmp = page.with_name(f".{page_name}.tmp")
    tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    os.replace(tmp, page)  # readers never see a half-written page
    return str(page)


def _worst_cases(
    rows: pd.DataFrame, as_of: pd.Timestamp, forecast_path: str, obs_path: str, folder: Path
) -> str:
    from pipelines.forecast.store import open_forecast_store

    per_init = sk.skill_per_init(sk.paired(sk.window(rows, as_of, "7D"), SIMVP, "persistence"))
    per_init = per_init.dropna().sort_values().iloc[:WORST_CASES]
    if not len(per_init):
        return "<p>No verified forecast with a persistence reference in the last 7 days.</p>"
    forecasts = open_forecast_store(forecast_path, complete_only=True, chunks=None)
    obs = xr.open_zarr(obs_path, chunks=None)
    out = []
    for k, (init, value) in enumerate(per_init.items()):
        png = _case_figure(
            forecasts, obs, pd.Timestamp(init), float(value), folder / f"worst_{k}.png"
        )
        out.append(_figure(f"{pd.Timestamp(init):%Y-%m-%d %H:%M}Z: skill {value:.3f}", png))
    return "".join(out)
