"""The forecast store's guard: never replace a complete entry by a worse-formed one.

A re-run of an init time replaces its entry; a broken model (NaN weights, a bad checkpoint)
must not overwrite a good forecast with holes. :func:`check_not_worse` compares the finite
values of the stored entry and of the new one before any byte is written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog.vocabulary import INIT_TIME

logger = logging.getLogger(__name__)

COMPLETE = "forecast_complete"
"""The per-entry completeness flag of the forecast store (True once all its chunks landed)."""


def finite_count(ds: xr.Dataset) -> int:
    """Finite values over the forecast variables of one entry (loads that entry only).

    Parameters
    ----------
    ds : xr.Dataset
        One entry: forecast variables ``(lead_time, y, x)`` (3-D or more); smaller
        per-entry variables are ignored.
    """
    names = [str(v) for v in ds.data_vars if ds[v].ndim >= 3]  # (lead_time, y, x) variables
    return int(sum(np.count_nonzero(np.isfinite(np.asarray(ds[v].values))) for v in names))


def check_not_worse(entry: xr.Dataset, forecast: xr.Dataset) -> None:
    """Refuse to replace a complete ``entry`` by ``forecast`` with fewer finite values.

    Parameters
    ----------
    entry : xr.Dataset
        The stored entry (no ``init_time`` dim) with its ``forecast_complete`` flag.
    forecast : xr.Dataset
        The new forecast block, ``init_time`` of length 1.

    Raises
    ------
    ValueError
        The stored entry is complete and the new one has fewer finite values; both
        checkpoints are named.
    """
    if not bool(entry[COMPLETE].values):
        return
    old, new = finite_count(entry), finite_count(forecast.isel({INIT_TIME: 0}))
    if new < old:
        init = pd.Timestamp(entry[INIT_TIME].values).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise ValueError(
            f"refusing to replace the complete forecast for init_time {init} ({old} finite "
            f"values, checkpoint {str(entry['checkpoint'].values)!r}) by one with {new} finite "
            f"values (checkpoint {str(forecast['checkpoint'].values[0])!r})"
        )


@contextlib.contextmanager
def restored_on_error(restore: Callable[[], None], entry: str) -> Iterator[None]:
    """Run a rewrite of one entry; on an ``OSError`` (a full disk...) write the old one back.

    Parameters
    ----------
    restore : callable
        Writes the old entry (values and ``forecast_complete`` flag, read before the rewrite)
        back in place.
    entry : str
        ``"init_time <T> of <store>"``, for messages.

    Raises
    ------
    OSError
        The original error, re-raised. When the restore succeeded the entry is as it was (the
        CLI's "what was already stored is unchanged" holds); when the restore failed too, the
        error gets a ``store_state`` attribute saying truthfully what changed, which
        :func:`pipelines.cli._errors.environment_message` prints instead.
    """
    try:
        yield
    except OSError as error:
        try:
            restore()
        except OSError as again:
            error.store_state = (  # type: ignore[attr-defined]
                f"{entry} is partly rewritten and marked incomplete ({COMPLETE} False, "
                f"restoring it failed too: {again.strerror or again}); re-run that forecast "
                "once there is space"
            )
        else:
            logger.warning("%s: rewrite failed (%s); the old entry was written back", entry, error)
        raise
