"""Verify every issued forecast whose valid times are observed: forecast store → scores → page.

:func:`verify_source` is what ``nowcast verify`` and the ``verify/<source>`` deployment run:

1. **discover**: the complete entries of ``DIR/forecasts/<source>.zarr`` initialised in
   ``[since, as_of]`` whose last valid time is observed (at or before the newest
   ``frame_present`` time of the observation store). ``since`` defaults to ``as_of - lookback``
   so an hourly run reads a bounded number of entries however long the archive is.
2. **fingerprint** each entry (:func:`entry_fingerprint`): its provenance (checkpoint hash,
   model version, input times, fallback), its variables, and the availability of every
   observation it is scored on (valid times and the baselines' history). An entry whose
   fingerprint is already stored is skipped (a rerun adds nothing); a late observation or a
   re-run forecast changes it, so exactly the entries it affects are re-scored.
3. **score** each new or changed entry (:func:`pipelines.live.scoring.score_entry`) and write
   its rows to the verification store right away (one atomic day-file replace per entry), so a
   killed run keeps every entry it finished and the next run scores the rest.
4. **page**: ``DIR/reports/<source>/live.html`` (:mod:`pipelines.live.page`).
5. **alerts** (:class:`AlertConfig`): rolling skill against persistence below a floor, or
   stale inputs. They are returned in :attr:`VerifyReport.alerts`; the CLI exits non-zero and
   the flow fails with the first one as its message.

Observations are prepared exactly as the forecast's inputs were (the store's
``input_preparation`` attribute: variables, crop, coarsening), so the forecast and the
observation share one grid.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.paths import DataDir
from data_catalog.vocabulary import INIT_TIME, LEAD_TIME, TIME, X, Y
from pipelines.forecast.inputs import newest_observation
from pipelines.forecast.store import INPUT_TIME, PROVENANCE_STRINGS, open_forecast_store
from pipelines.live.alerts import AlertConfig, check_alerts
from pipelines.live.scoring import ScoreConfig, history_times, score_entry
from pipelines.live.store import VerificationStore, stage
from pipelines.prepare import Preparation, prepare_frames, store_time_step

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK = pd.Timedelta("1D")
"""Entries initialised this long before ``as_of`` are (re)checked by a default run: a day of
late observations and re-run forecasts is caught; ``since`` reaches further back."""


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`verify_source`.

    Parameters
    ----------
    source : str
        Source name.
    as_of : pandas.Timestamp
        The time the run verified for (naive UTC).
    scored : tuple of pandas.Timestamp
        Init times scored (new or re-scored) by this run.
    unchanged : int
        Entries already scored with the same fingerprint (skipped).
    pending : int
        Entries of the period whose valid times are not all observed yet.
    store : str
        The verification store directory.
    page : str or None
        ``live.html``, or None when not rendered.
    alerts : tuple of str
        One line per alert (empty when all is well).
    timings : dict of str to float
        Wall seconds per stage.
    """

    source: str
    as_of: pd.Timestamp
    scored: tuple[pd.Timestamp, ...]
    unchanged: int
    pending: int
    store: str
    page: str | None
    alerts: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


def _naive(t: object) -> pd.Timestamp:
    ts = pd.Timestamp(t)  # type: ignore[arg-type]
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def preparation_of(forecasts: xr.Dataset) -> Preparation:
    """The input preparation recorded by the forecast store (``input_preparation`` attr)."""
    text = forecasts.attrs.get("input_preparation")
    if not text:
        raise ValueError("the forecast store has no 'input_preparation' attribute to verify with")
    return Preparation.from_dict(json.loads(text))


def observed_frames(
    obs: xr.Dataset, preparation: Preparation, times: pd.DatetimeIndex
) -> xr.DataArray:
    """Prepared observations ``(time, channel, y, x)`` at ``times``; NaN where not present.

    Times beyond the store's axis or with ``frame_present`` False are all-NaN frames.
    """
    present = np.isin(times.values, obs[TIME].values)
    subset = obs.sel({TIME: times[present]})
    frames = prepare_frames(subset, preparation).reset_coords(drop=True)
    if "frame_present" in subset:
        mask = xr.DataArray(np.asarray(subset["frame_present"].values, bool), dims=TIME)
        frames = frames.where(mask)
    return frames.reindex({TIME: times}).load()


def _availability(obs: xr.Dataset, times: pd.DatetimeIndex) -> str:
    """``"1"``/``"0"`` per time: observed (``frame_present``) or not."""
    index = pd.DatetimeIndex(obs[TIME].values)
    where = index.get_indexer(times)
    present = np.asarray(obs["frame_present"].values, bool) if "frame_present" in obs else None
    flags = []
    for i in where:
        ok = i >= 0 and (present is None or bool(present[i]))
        flags.append("1" if ok else "0")
    return "".join(flags)


def entry_fingerprint(
    entry: xr.Dataset, obs: xr.Dataset, valid: pd.DatetimeIndex, history: pd.DatetimeIndex
) -> str:
    """SHA-256 (16 hex digits) of what an entry's scores depend on.

    Parameters
    ----------
    entry : xr.Dataset
        One forecast-store entry (provenance strings, ``input_time``, variables).
    obs : xr.Dataset
        The observation store (its ``frame_present`` flags).
    valid, history : pandas.DatetimeIndex
        The entry's valid times and the baselines' history times.
    """
    parts = [str(entry[name].values) for name in PROVENANCE_STRINGS if name in entry]
    if INPUT_TIME in entry:
        parts.append(",".join(str(t) for t in entry[INPUT_TIME].values))
    parts.append(",".join(sorted(str(v) for v in entry.data_vars)))
    parts.append(_availability(obs, valid))
    parts.append(_availability(obs, history))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _candidates(
    forecasts: xr.Dataset, since: pd.Timestamp, as_of: pd.Timestamp, observed_until
) -> tuple[list[int], int]:
    """Indexes of entries in ``[since, as_of]`` that are fully observed, and the pending count."""
    inits = pd.DatetimeIndex(forecasts[INIT_TIME].values)
    last_lead = pd.Timedelta(forecasts[LEAD_TIME].values[-1])
    chosen, pending = [], 0
    for i in np.flatnonzero((inits >= since) & (inits <= as_of)):
        if observed_until is not None and inits[i] + last_lead <= observed_until:
            chosen.append(int(i))
        else:
            pending += 1
    return chosen, pending


def _score_one(
    entry: xr.Dataset,
    obs: xr.Dataset,
    preparation: Preparation,
    valid: pd.DatetimeIndex,
    history: pd.DatetimeIndex,
    config: ScoreConfig,
) -> pd.DataFrame:
    """Rows of one entry (observations read for its valid and history times only)."""
    variables = list(preparation.variables)
    entry = entry.load()
    observed = observed_frames(obs, preparation, valid)
    observed = observed.rename({TIME: LEAD_TIME}).assign_coords(
        {LEAD_TIME: entry[LEAD_TIME].values, Y: entry[Y].values, X: entry[X].values}
    )
    past = observed_frames(obs, preparation, history)
    past = past.assign_coords({Y: entry[Y].values, X: entry[X].values})
    if bool(past.isel({TIME: -1}).isnull().all()):
        logger.warning("no observed frame at init %s: baselines skipped", history[-1])
        return score_entry(entry, observed, None, variables, config)
    return score_entry(entry, observed, past, variables, config)


def verify_source(
    source: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    since: object | None = None,
    as_of: object | None = None,
    leads: int | None = None,
    config: ScoreConfig | None = None,
    alerts: AlertConfig | None = None,
    render: bool = True,
    lookback: str | pd.Timedelta = DEFAULT_LOOKBACK,
) -> VerifyReport:
    """Score every observed, not yet scored forecast of ``source``; update the page; alert.

    Parameters
    ----------
    source : str
        Catalog source name (forecast store ``DIR/forecasts/<source>.zarr``).
    data_dir : path, optional
        Data directory (default ``$NOWCAST_DATA_DIR`` or ``./data``).
    since : datetime-like, optional
        Oldest init time to (re)check (UTC); default ``as_of - lookback``.
    as_of : datetime-like, optional
        The verification time (UTC; default now): nothing observed after it is used.
    leads : int, optional
        Verify the ``<source>-<N>leads.zarr`` store (see ``DataDir.forecast_store``).
    config : ScoreConfig, optional
        Scores, thresholds and baselines.
    alerts : AlertConfig, optional
        Alert rules (default :class:`AlertConfig`).
    render : bool
        Write ``DIR/reports/<source>/live.html`` (``live-<N>leads.html`` with ``leads``).
    lookback : str or pandas.Timedelta
        Default span before ``as_of`` when ``since`` is None.

    Returns
    -------
    VerifyReport
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    config = config or ScoreConfig()
    alerts = alerts or AlertConfig()
    paths = DataDir.resolve(data_dir)
    as_of = _naive(as_of if as_of is not None else pd.Timestamp.now(tz="UTC")).floor("s")
    since = _naive(since) if since is not None else as_of - pd.Timedelta(lookback)
    forecast_path = paths.forecast_store(source, leads)
    if not Path(forecast_path).exists():
        raise FileNotFoundError(f"no forecast store {forecast_path}: run nowcast forecast first")
    obs_path = paths.store(source)
    if not Path(obs_path).exists():
        raise FileNotFoundError(f"no observation store {obs_path}: run nowcast ingest first")
    store = VerificationStore(paths.verification(source, leads))
    forecasts = open_forecast_store(forecast_path, complete_only=True, chunks=None)
    obs = xr.open_zarr(obs_path, chunks=None)
    preparation = preparation_of(forecasts)
    step = store_time_step(obs)
    observed_until = newest_observation(obs, as_of)
    chosen, pending = _candidates(forecasts, since, as_of, observed_until)
    known = store.fingerprints(since, as_of) if chosen else {}
    stage("discovered")
    timings["discover"] = time.perf_counter() - t0

    scored, unchanged = [], 0
    for index in chosen:
        entry = forecasts.isel({INIT_TIME: index})
        init = pd.Timestamp(entry[INIT_TIME].values)
        valid = pd.DatetimeIndex(init + pd.to_timedelta(entry[LEAD_TIME].values))
        history = history_times(init, step, config.motion_frames)
        fingerprint = entry_fingerprint(entry, obs, valid, history)
        if known.get(init) == fingerprint:
            unchanged += 1
            continue
        rows = _score_one(entry, obs, preparation, valid, history, config)
        stage("scored")
        store.write({init: rows.assign(fingerprint=fingerprint)})
        scored.append(init)
        logger.info("scored %s init %s (%d rows)", source, init, len(rows))
    timings["score"] = time.perf_counter() - t0 - sum(timings.values())

    page = None
    if render:
        from pipelines.live.page import write_live_page

        name = "live.html" if leads is None else f"live-{leads}leads.html"
        page = write_live_page(source, paths, store, as_of, forecast_path, obs_path, config, name)
        stage("page_written")
        timings["page"] = time.perf_counter() - t0 - sum(timings.values())
    found = check_alerts(store, as_of, observed_until, alerts)
    for line in found:
        logger.error("ALERT %s: %s", source, line)
    return VerifyReport(
        source=source,
        as_of=as_of,
        scored=tuple(scored),
        unchanged=unchanged,
        pending=pending,
        store=str(store.path),
        page=page,
        alerts=tuple(found),
        timings=timings,
    )
