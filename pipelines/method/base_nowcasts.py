"""Base nowcasts that a corrected SimVP (``SimVPConfig.base``) learns to improve.

One function, :func:`base_nowcast`, builds the base at training, evaluation and forecast time,
so the network always sees the same base for the same input frames. Each base is the registered
baseline of :mod:`pipelines.baselines` (so it is identical to the baseline scored by
``nowcast evaluate``):

- ``persistence``: the last input frame repeated;
- ``extrapolation``: pySTEPS Lucas–Kanade motion + semi-Lagrangian advection of the last frame
  (``pipelines.baselines.optical_flow``);
- ``climatology``: the daily-cycle mean of an archive of past frames
  (``pipelines.baselines.climatology``; the archive must be passed, and only frames at or before
  the last input time are used);
- ``anomaly_persistence``: that climatology plus the last frame's anomaly from it, damped per
  lead by a least-squares coefficient fitted on the same past archive
  (``pipelines.baselines.anomaly_persistence``).

Contract of every entry of :data:`BASES`: ``base(history, steps, **context) -> np.ndarray``
with ``history`` an ``xr.DataArray (time, channel, y, x)`` in physical units (NaN = no data) and
the result ``(steps, channel, y, x)`` float32 in the same units; NaN is allowed where the base
has no value (persistence of a NaN pixel, climatology with no sample) and is filled downstream
like a missing input pixel.

:class:`BaseCache` keeps computed bases per window key, because Lucas–Kanade costs 0.1–1 s per
window and training visits each window every epoch.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import TIME
from pipelines.baselines import BASELINES
from simvp_model.config import BASES as MODEL_BASES
from simvp_model.registry import Registry

logger = logging.getLogger(__name__)

BaseFn = Callable[..., np.ndarray]
BASES: Registry[BaseFn] = Registry("base nowcast")

CHANNEL = "channel"


def _from_baseline(name: str) -> BaseFn:
    def base(history: xr.DataArray, steps: int, **context: Any) -> np.ndarray:
        forecast = BASELINES.get(name)(history, steps, **context)
        return np.asarray(forecast.values, dtype=np.float32)  # (steps, C, y, x)

    base.__doc__ = f"The ``{name}`` baseline of :mod:`pipelines.baselines` as a base nowcast."
    return base


BASES.add("persistence", _from_baseline("persistence"))
BASES.add("extrapolation", _from_baseline("optical_flow"))
BASES.add("climatology", _from_baseline("climatology"))
BASES.add("anomaly_persistence", _from_baseline("anomaly_persistence"))
# Bases that read the archive of past frames (``archive=`` in base_nowcast).
ARCHIVE_BASES = frozenset({"climatology", "anomaly_persistence"})
# How much archive before the first valid time a base needs (the climatology baseline's default
# period: one day, so that every lead time's time of day has a past sample).
WARMUP: dict[str, pd.Timedelta] = {name: pd.Timedelta("1D") for name in ARCHIVE_BASES}


def base_available(
    name: str, init_time: np.datetime64, archive_start: np.datetime64, step: pd.Timedelta
) -> bool:
    """Whether base ``name`` exists for a window issued at ``init_time``.

    The :data:`ARCHIVE_BASES` need an archive frame one period before the first lead's valid
    time (``init_time + step - 1 day >= archive_start``); the other bases always exist. Windows
    without a base are left out of training and scoring alike (see ``pipelines.windows``).
    """
    BASES.get(name)
    warmup = WARMUP.get(name)
    if warmup is None:
        return True
    return pd.Timestamp(init_time) + step - warmup >= pd.Timestamp(archive_start)


if set(BASES.names()) != set(MODEL_BASES) - {"none"}:  # the model's names and ours must agree
    raise RuntimeError(f"bases {BASES.names()} != SimVPConfig bases {MODEL_BASES}")


def history_array(frames: np.ndarray, times: np.ndarray | pd.DatetimeIndex) -> xr.DataArray:
    """Wrap ``frames (T, C, H, W)`` with their ``times (T,)`` as the baselines' history."""
    frames = np.asarray(frames)
    times = np.asarray(times, dtype="datetime64[ns]")
    if frames.ndim != 4 or times.shape != (frames.shape[0],):
        raise ValueError(
            f"need frames (T, C, H, W) and times (T,), got {frames.shape=} {times.shape=}"
        )
    return xr.DataArray(frames, dims=(TIME, CHANNEL, "y", "x"), coords={TIME: times})


def base_nowcast(
    name: str,
    frames: np.ndarray,
    times: np.ndarray | pd.DatetimeIndex,
    steps: int,
    *,
    time_step: str | pd.Timedelta | None = None,
    archive: xr.DataArray | None = None,
) -> np.ndarray:
    """The base nowcast ``name`` of one input window.

    Parameters
    ----------
    name : str
        Name in :data:`BASES` (``persistence``, ``extrapolation``, ``climatology``).
    frames : np.ndarray
        ``(T_in, C, H, W)`` observed frames in physical units (NaN = no data).
    times : array of datetime64
        ``(T_in,)`` their valid times (regular; the last one is the init time).
    steps : int
        Lead times to produce.
    time_step : str or Timedelta, optional
        Forecast step (default: the spacing of ``times``).
    archive : xr.DataArray, optional
        ``(time, channel, y, x)`` past observations, required by the :data:`ARCHIVE_BASES`
        (frames after the init time are ignored, so the whole store may be passed).

    Returns
    -------
    np.ndarray
        ``(steps, C, H, W)`` float32, physical units.
    """
    history = history_array(frames, times)
    context: dict[str, Any] = {}
    if time_step is not None:
        context["time_step"] = time_step
    if archive is not None:
        context["archive"] = archive
    out = BASES.get(name)(history, steps, **context)
    if out.shape != (steps, *frames.shape[1:]):
        raise ValueError(
            f"base {name!r} returned {out.shape}, expected {(steps, *frames.shape[1:])}"
        )
    return out


class BaseCache:
    """Least-recently-used cache of base nowcasts keyed by window (e.g. ``(store, start)``).

    Parameters
    ----------
    max_bytes : int
        Budget; the oldest entries are dropped beyond it (0 = no caching).
    """

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.computed = 0

    def get(self, key: Hashable, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached value of ``key``, or ``compute()`` stored under it (a read-only array)."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = np.asarray(compute())
        value.setflags(write=False)
        self.computed += 1
        if value.nbytes <= self.max_bytes:
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes
        return value

    def __len__(self) -> int:
        return len(self._items)
