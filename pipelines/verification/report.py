"""Verification report files: ``scores.csv``, ``scores.md``, plots, ``index.html``.

``scores.csv`` has one row per number with the columns ``method, score, variable, threshold,
scale, lead_time_minutes, value`` (``threshold`` in the variable's units and ``scale`` in pixels
are empty where they do not apply; for ``rapsd_ratio`` ``scale`` is the wavelength in pixels)
and, when bootstrap intervals were computed, ``lower, upper`` (see
:mod:`pipelines.verification.bootstrap`). Plots use matplotlib's object API (``Figure``, Agg
canvas), never pyplot, so no global backend state is touched; score plots draw the intervals as
bands. ``index.html`` (:mod:`pipelines.verification.html`) embeds every plot.

Ensemble methods add ``reliability.csv`` (the reliability diagram's numbers per method,
threshold, lead and probability bin, with the pixel count of each bin) and
``rank_histogram.csv`` (:mod:`pipelines.verification.ensemble_tables`), drawn as
``reliability.png`` (a panel per threshold, pooled over lead times, pixel counts below) and
``rank_histogram.png``. CRPS and spread/skill per lead are ordinary score plots.

Intervals from a single resampling group (one block or one event) are points, not
uncertainty: with ``n_groups < 2`` the markdown, the plots and the page show no interval
(``scores.csv`` keeps the columns).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import CHANNEL, INIT_TIME, LEAD_TIME, X, Y
from pipelines.verification.html import write_html


def wide_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Pivot to one row per (variable, score, threshold, scale, method), a column per lead."""
    keyed = scores.assign(
        threshold=scores["threshold"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
        scale=scores["scale"].map(lambda v: "" if pd.isna(v) else f"{int(v)}"),
        lead=scores["lead_time_minutes"].map(lambda m: f"+{m:g} min"),
    )
    index = ["variable", "score", "threshold", "scale", "method"]
    wide = keyed.pivot_table(index=index, columns="lead", values="value", sort=False)
    leads = sorted(wide.columns, key=lambda c: float(c[1:].split()[0]))
    return wide[leads]


SPECTRAL_SCORES = frozenset({"rapsd_ratio"})
"""Scores per wavelength (``scale``): drawn by :func:`plot_spectra`, not :func:`plot_scores`."""
DIAGRAM_SCORES = frozenset({"reliability", "rank_histogram", "brier"})
"""Not drawn vs lead time: the reliability and rank-histogram summaries have their own diagrams
(:func:`plot_reliability`, :func:`plot_rank_histograms`) and ``bss`` shows the Brier score's
lead-time curve relative to climatology (one figure less per report: figures cost ~1 s each)."""


def _has_bands(scores: pd.DataFrame) -> bool:
    return {"lower", "upper"} <= set(scores.columns) and bool(scores["lower"].notna().any())


def write_markdown(
    path: str | os.PathLike[str],
    scores: pd.DataFrame,
    title: str,
    notes: Sequence[str] = (),
) -> None:
    """``scores.md``: notes, then one table per score (rows method × threshold/scale).

    Cells are ``value [lower, upper]`` where the rows carry bootstrap intervals.
    """
    wide = wide_table(scores)
    if _has_bands(scores):
        # pivot_table drops all-NaN rows (scores without intervals): realign on the values.
        lows = wide_table(scores.assign(value=scores["lower"])).reindex(wide.index)
        highs = wide_table(scores.assign(value=scores["upper"])).reindex(wide.index)
    lines = [f"# {title}", ""]
    lines += [f"- {note}" for note in notes]
    for (variable, score), block in wide.groupby(level=["variable", "score"], sort=False):
        lines += ["", f"## {score} — {variable}", ""]
        header = ["method", "threshold", "scale", *block.columns]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for key, row in block.iterrows():
            _, _, threshold, scale, method = key
            values = [f"{v:.4g}" for v in row.values]
            if _has_bands(scores):
                values = [
                    v if pd.isna(lo) else f"{v} [{lo:.4g}, {hi:.4g}]"
                    for v, lo, hi in zip(values, lows.loc[key], highs.loc[key], strict=True)
                ]
            cells = [method, threshold, scale, *values]
            lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_scores(directory: str | os.PathLike[str], scores: pd.DataFrame) -> list[str]:
    """One PNG per score: value vs lead time, a line per method, a panel per threshold/scale.

    Bootstrap intervals (``lower``/``upper`` columns) are drawn as shaded bands.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    files = []
    bands = _has_bands(scores)
    for score, rows in scores.groupby("score", sort=False):
        if score in SPECTRAL_SCORES or score in DIAGRAM_SCORES:
            continue
        configs = (
            rows[["variable", "threshold", "scale"]]
            .drop_duplicates()
            .itertuples(index=False, name=None)
        )
        configs = list(configs)
        ncols = min(4, len(configs))
        nrows = math.ceil(len(configs) / ncols)
        # Fixed margins: constrained layout costs ~0.5 s per figure for no visible gain here.
        fig = Figure(figsize=(4 * ncols, 3 * nrows))
        fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.9, wspace=0.3, hspace=0.5)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, (variable, threshold, scale) in zip(axes, configs, strict=False):
            panel = rows[rows["variable"] == variable]
            if not pd.isna(threshold):
                panel = panel[np.isclose(panel["threshold"], threshold)]
            if not pd.isna(scale):
                panel = panel[np.isclose(panel["scale"], scale)]
            for method, line in panel.groupby("method", sort=False):
                drawn = ax.plot(line["lead_time_minutes"], line["value"], marker="o", label=method)
                if bands and line["lower"].notna().any():
                    ax.fill_between(
                        line["lead_time_minutes"],
                        line["lower"],
                        line["upper"],
                        color=drawn[0].get_color(),
                        alpha=0.2,
                        linewidth=0,
                    )
            label = f"{score} {variable}"
            label += "" if pd.isna(threshold) else f" ≥{threshold:g}"
            label += "" if pd.isna(scale) else f" @{int(scale)}px"
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("lead time (min)")
            ax.grid(alpha=0.3)
        for ax in axes[len(configs) :]:
            ax.set_visible(False)
        axes[0].legend(fontsize=8)
        path = os.path.join(os.fspath(directory), f"score_{score}.png")
        fig.savefig(path, dpi=90)
        files.append(path)
    return files


def plot_examples(
    path: str | os.PathLike[str],
    observation: xr.DataArray,
    forecasts: Mapping[str, xr.DataArray],
    history: xr.DataArray,
    n_leads: int = 4,
    channel: int = 0,
) -> str:
    """Side-by-side frames of the window with the largest observed mean: a row per method.

    Parameters
    ----------
    path : str or path
        PNG to write.
    observation : xr.DataArray
        ``(init_time, lead_time, channel, y, x)`` verifying frames.
    forecasts : mapping of str to xr.DataArray
        Same dims, one per method.
    history : xr.DataArray
        ``(init_time, history_frame, channel, y, x)`` inputs (the last one is drawn).
    n_leads : int
        Lead times drawn, evenly spread.
    channel : int
        Which channel.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    obs = observation.isel({CHANNEL: channel})
    sample = int(np.nanargmax(obs.mean((LEAD_TIME, Y, X), skipna=True).fillna(-np.inf).values))
    leads = np.unique(np.linspace(0, obs.sizes[LEAD_TIME] - 1, n_leads).round().astype(int))
    rows = {"observed": obs.isel({INIT_TIME: sample})}
    for name, fc in forecasts.items():
        rows[name] = fc.isel({INIT_TIME: sample, CHANNEL: channel})
    last_input = history.isel({INIT_TIME: sample, "history_frame": -1, CHANNEL: channel})
    finite = np.concatenate([np.ravel(r.values) for r in rows.values()])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0)
    fig = Figure(figsize=(2.4 * (len(leads) + 1) + 0.8, 2.3 * len(rows)))
    fig.subplots_adjust(left=0.02, right=0.9, bottom=0.02, top=0.88, wspace=0.1, hspace=0.3)
    axes = fig.subplots(len(rows), len(leads) + 1, squeeze=False)
    # North up: row 0 drawn at the top when y decreases (radar), at the bottom when it increases.
    ys = np.asarray(obs[Y].values) if Y in obs.coords else np.arange(2)[::-1]
    style = {"vmin": vmin, "vmax": vmax, "cmap": "viridis"}
    style["origin"] = "lower" if ys.size > 1 and ys[-1] > ys[0] else "upper"
    image = axes[0, 0].imshow(last_input.values, **style)
    axes[0, 0].set_title("last input", fontsize=8)
    for r, (name, frames) in enumerate(rows.items()):
        if r > 0:
            axes[r, 0].set_visible(False)
        for j, k in enumerate(leads):
            ax = axes[r, j + 1]
            ax.imshow(frames.isel({LEAD_TIME: int(k)}).values, **style)
            minutes = obs[LEAD_TIME].values[k] / np.timedelta64(1, "m")
            ax.set_title(f"{name} +{minutes:g} min", fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(
        image,
        cax=fig.add_axes((0.92, 0.2, 0.015, 0.6)),
        label=str(observation.attrs.get("units", "")),
    )
    init = pd.Timestamp(obs[INIT_TIME].values[sample])
    fig.suptitle(f"test window issued {init:%Y-%m-%d %H:%M} UTC", fontsize=10)
    fig.savefig(path, dpi=80)
    return os.fspath(path)


def plot_spectra(
    path: str | os.PathLike[str],
    spectra: Mapping[str, xr.DataArray],
    n_leads: int = 4,
    pixel_km: float | None = None,
) -> str:
    """RAPSD vs wavelength, a panel per lead time, a line per method (and ``observed``).

    Parameters
    ----------
    path : str or path
        PNG to write.
    spectra : mapping of str to xr.DataArray
        ``name → (lead_time, wavelength)`` mean power spectra (units²), including the observed
        one under the key ``"observed"`` (drawn in black).
    n_leads : int
        Lead times drawn, evenly spread.
    pixel_km : float, optional
        Grid spacing: wavelengths shown in km instead of pixels.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state
    from matplotlib.ticker import NullFormatter

    from pipelines.verification.spectral import WAVELENGTH

    first = next(iter(spectra.values()))
    leads = np.unique(np.linspace(0, first.sizes[LEAD_TIME] - 1, n_leads).round().astype(int))
    fig = Figure(figsize=(3.6 * len(leads), 3.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.85, wspace=0.3)
    axes = fig.subplots(1, len(leads), squeeze=False)[0]
    scale = pixel_km or 1.0
    for ax, k in zip(axes, leads, strict=True):
        for name, psd in spectra.items():
            line = psd.isel({LEAD_TIME: int(k)})
            style = {"color": "black", "linewidth": 2} if name == "observed" else {}
            ax.loglog(line[WAVELENGTH].values * scale, line.values, label=name, **style)
        minutes = first[LEAD_TIME].values[k] / np.timedelta64(1, "m")
        ax.set_title(f"+{minutes:g} min", fontsize=9)
        ax.invert_xaxis()  # large scales left, small scales right
        lam = np.asarray(first[WAVELENGTH].values) * scale
        ticks = [t for t in 2.0 ** np.arange(-3, 12) if lam.min() <= t <= lam.max()]  # octaves
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"wavelength ({'km' if pixel_km else 'px'})")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("power")
    axes[0].legend(fontsize=7)
    fig.suptitle("radially averaged power spectrum (less power at small scales = blur)")
    fig.savefig(path, dpi=80)
    return os.fspath(path)


def plot_reliability(path: str | os.PathLike[str], table: pd.DataFrame) -> str:
    """Reliability diagrams: a panel per threshold (pooled over lead times), a line per method,
    and under each the pixel count per probability bin (log scale).

    Parameters
    ----------
    path : str or path
        PNG to write.
    table : pandas.DataFrame
        Rows of :func:`pipelines.verification.ensemble_tables.reliability_rows`.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    thresholds = sorted(table["threshold"].unique())
    fig = Figure(figsize=(3.8 * len(thresholds), 5.2))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.9, wspace=0.3, hspace=0.08)
    grid = fig.add_gridspec(2, len(thresholds), height_ratios=(3, 1))
    for j, threshold in enumerate(thresholds):
        top = fig.add_subplot(grid[0, j])
        bottom = fig.add_subplot(grid[1, j], sharex=top)
        top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        rows = table[np.isclose(table["threshold"], threshold)]
        for method, part in rows.groupby("method", sort=False):
            weighted = part.assign(
                p=part["forecast_probability"].fillna(0.0) * part["count"],
                o=part["observed_frequency"].fillna(0.0) * part["count"],
            )
            pooled = weighted.groupby(["bin_lower", "bin_upper"], sort=True)[["p", "o", "count"]]
            pooled = pooled.sum().reset_index()
            seen = pooled["count"].where(pooled["count"] > 0)  # empty bins: no point
            pooled["p"], pooled["o"], pooled["n"] = pooled["p"] / seen, pooled["o"] / seen, seen
            drawn = top.plot(pooled["p"], pooled["o"], marker="o", label=str(method))
            centres = (pooled["bin_lower"] + pooled["bin_upper"]) / 2
            bottom.step(
                centres, pooled["n"].clip(lower=0.5), where="mid", color=drawn[0].get_color()
            )
        top.set_title(f"P(≥ {threshold:g}), all leads", fontsize=9)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.grid(alpha=0.3)
        top.tick_params(labelbottom=False)
        bottom.set_yscale("log")
        bottom.set_xlabel("forecast probability")
        bottom.grid(alpha=0.3)
        if j == 0:
            top.set_ylabel("observed frequency")
            bottom.set_ylabel("pixels")
            top.legend(fontsize=8)
    fig.suptitle("reliability (diagonal = reliable); pixel count per bin below")
    fig.savefig(path, dpi=80)
    return os.fspath(path)


def plot_rank_histograms(path: str | os.PathLike[str], table: pd.DataFrame) -> str:
    """Rank histograms pooled over lead times: a panel per method, flat line = reliable.

    Parameters
    ----------
    path : str or path
        PNG to write.
    table : pandas.DataFrame
        Rows of :func:`pipelines.verification.ensemble_tables.rank_histogram_rows`.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    methods = list(dict.fromkeys(table["method"]))
    fig = Figure(figsize=(3.6 * len(methods), 3.0))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.17, top=0.82, wspace=0.3)
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods, strict=True):
        counts = table[table["method"] == method].groupby("rank")["count"].sum()
        frequency = counts / counts.sum() if counts.sum() > 0 else counts * np.nan
        ax.bar(frequency.index, frequency.values, width=0.9)
        ax.axhline(1.0 / len(frequency), color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{method} ({len(frequency) - 1} members)", fontsize=9)
        ax.set_xlabel("rank of the observation")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("frequency")
    threshold = table["threshold"].dropna()
    where = f", where rain ≥ {threshold.iloc[0]:g}" if len(threshold) else ""
    fig.suptitle(f"rank histograms, all leads{where} (U = under-dispersed)")
    fig.savefig(path, dpi=80)
    return os.fspath(path)


def write_report(
    directory: str | os.PathLike[str],
    scores: pd.DataFrame,
    title: str,
    notes: Sequence[str] = (),
    examples: tuple[xr.DataArray, Mapping[str, xr.DataArray], xr.DataArray] | None = None,
    spectra: Mapping[str, xr.DataArray] | None = None,
    provenance: Mapping[str, object] | None = None,
    comparisons: pd.DataFrame | None = None,
    reliability: pd.DataFrame | None = None,
    rank_histograms: pd.DataFrame | None = None,
    n_groups: int | None = None,
) -> list[str]:
    """Write ``scores.csv``, ``scores.md``, the plots and the self-contained ``index.html``.

    Parameters
    ----------
    directory : str or path
        Report folder (created).
    scores : pandas.DataFrame
        Rows with the columns of ``scores.csv``.
    title : str
        Markdown title.
    notes : sequence of str
        Bullet points under the title.
    examples : (observation, forecasts, history), optional
        Arguments of :func:`plot_examples` for ``examples.png``.
    spectra : mapping of str to xr.DataArray, optional
        Argument of :func:`plot_spectra` for ``rapsd.png``.
    provenance : mapping, optional
        Key/value table of what produced the numbers (shown in ``index.html``).
    comparisons : pandas.DataFrame, optional
        Paired differences with their intervals (``comparisons.csv`` and the page).
    reliability, rank_histograms : pandas.DataFrame, optional
        Ensemble tables (``reliability.csv``/``rank_histogram.csv`` and their plots).
    n_groups : int, optional
        Resampling groups behind the intervals; below 2 the intervals are not shown.

    Returns
    -------
    list of str
        The files written.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    csv = os.path.join(directory, "scores.csv")
    scores.to_csv(csv, index=False, float_format="%.6g")
    tables = []
    for name, table in (("reliability", reliability), ("rank_histogram", rank_histograms)):
        if table is not None and len(table):
            tables.append(os.path.join(directory, f"{name}.csv"))
            table.to_csv(tables[-1], index=False, float_format="%.6g")
    if n_groups is not None and n_groups < 2:  # a "interval" over one group is a point
        scores = scores.drop(columns=["lower", "upper"], errors="ignore")
        if comparisons is not None:
            comparisons = comparisons.drop(columns=["lower", "upper"], errors="ignore")
    md = os.path.join(directory, "scores.md")
    write_markdown(md, scores, title, notes)
    figures = [
        (f"{os.path.basename(p)[6:-4]} vs lead time", p) for p in plot_scores(directory, scores)
    ]
    if reliability is not None and len(reliability):
        png = plot_reliability(os.path.join(directory, "reliability.png"), reliability)
        figures.append(("reliability diagrams", png))
    if rank_histograms is not None and len(rank_histograms):
        png = plot_rank_histograms(os.path.join(directory, "rank_histogram.png"), rank_histograms)
        figures.append(("rank histograms", png))
    if spectra:
        figures.append(
            ("power spectra", plot_spectra(os.path.join(directory, "rapsd.png"), spectra))
        )
    if examples is not None:
        png = plot_examples(os.path.join(directory, "examples.png"), *examples)
        figures.append(("example frames", png))
    files = [csv, *tables, md, *(p for _, p in figures)]
    if comparisons is not None:
        comparisons_csv = os.path.join(directory, "comparisons.csv")
        comparisons.to_csv(comparisons_csv, index=False, float_format="%.6g")
        files.append(comparisons_csv)
    page = os.path.join(directory, "index.html")
    files.append(write_html(page, title, scores, notes, provenance, figures, comparisons))
    return files
