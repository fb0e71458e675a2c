"""Synthetic observation stores and tiny models for the forecast and render tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from pipelines.forecast.store import crs_attrs

# LAEA Europe over Denmark: the 512 km x 512 km domain holds coastlines and land borders.
LAEA = pyproj.CRS.from_epsg(3035)
DENMARK_X0, DENMARK_Y0 = 4_100_000.0, 3_850_000.0  # upper-left pixel centre, metres
STEP = pd.Timedelta("5min")


def obs_store(
    path: Path,
    *,
    n_times: int = 12,
    start: str = "2021-06-01T12:00",
    shape: tuple[int, int] = (32, 32),
    pixel: float = 16_000.0,
    crs: pyproj.CRS = LAEA,
    absent: tuple[int, ...] = (),
    variable: str = "precipitation_rate",
    units: str = "mm/h",
    standard_name: str = "rainfall_rate",
) -> Path:
    """Write an observation store (ARCHITECTURE.md layout): value = time index + 1 in a blob.

    Frame ``t`` is ``t + 1`` mm/h inside a disc at the domain centre and 0 elsewhere; the top
    left 3x3 pixels are NaN (outside radar range). ``absent`` frames are NaN with
    ``frame_present`` False. Geographic ``crs``: ``y``/``x`` are latitude/longitude degrees.
    """
    H, W = shape
    if crs.is_geographic:
        y = 58.0 - np.arange(H) * pixel
        x = 6.0 + np.arange(W) * pixel
        lon, lat = np.meshgrid(x, y)
        names = {"y": "latitude", "x": "longitude"}
        units_xy = {"y": "degrees_north", "x": "degrees_east"}
    else:
        y = DENMARK_Y0 - np.arange(H) * pixel  # north-up: row 0 = largest y
        x = DENMARK_X0 + np.arange(W) * pixel
        xx, yy = np.meshgrid(x, y)
        lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xx, yy)
        names = {"y": "projection_y_coordinate", "x": "projection_x_coordinate"}
        units_xy = {"y": "m", "x": "m"}
    times = pd.date_range(start, periods=n_times, freq=STEP)
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    blob = ((ii - H / 2) ** 2 + (jj - W / 2) ** 2) < (min(H, W) / 4) ** 2
    data = np.zeros((n_times, H, W), dtype=np.float32)
    for t in range(n_times):
        data[t][blob] = t + 1.0
    data[:, :3, :3] = np.nan
    present = np.ones(n_times, dtype=bool)
    for t in absent:
        present[t] = False
        data[t] = np.nan
    ds = xr.Dataset(
        {
            variable: (
                ("time", "y", "x"),
                data,
                {"units": units, "standard_name": standard_name, "grid_mapping": "crs"},
            ),
            "frame_present": (("time",), present),
            "crs": ((), np.int32(0), crs_attrs(crs)),
        },
        coords={
            "time": times,
            "y": ("y", y, {"standard_name": names["y"], "units": units_xy["y"], "axis": "Y"}),
            "x": ("x", x, {"standard_name": names["x"], "units": units_xy["x"], "axis": "X"}),
            "latitude": (("y", "x"), lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "longitude": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.10", "source_name": "synthetic", "time_step": "5min"},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", encoding={variable: {"chunks": (1, H, W)}})
    return path


class FakeLoaded:
    """A stand-in for ``LoadedModel`` whose forecast is hand-computable.

    Lead ``k`` (1-based) = last input frame + ``k`` when wrapped with :func:`fake_predict` as
    the predictor: ``SimVPMethod.from_loaded(FakeLoaded(), fake_predict)``.
    """

    def __init__(self, in_frames: int = 4, out_frames: int = 3, variables=("precipitation_rate",)):
        from simvp_model.normalisation import Normalisation

        self.model = None
        self.config = None
        self.normalisation = Normalisation(
            "log1p", (0.0,) * len(variables), (1.0,) * len(variables)
        )
        self.metadata = {
            "source": "synthetic",
            "variables": list(variables),
            "time_step": "5min",
            "coarsen": 1,
            "crop": None,
            "in_frames": in_frames,
            "out_frames": out_frames,
        }
        self.path = "fake.pt"


def fake_predict(loaded, frames: np.ndarray, horizon: int) -> np.ndarray:
    """``(1, T_in, C, H, W)`` → ``(1, horizon, C, H, W)``: last frame + lead index."""
    last = frames[:, -1:]  # (1, 1, C, H, W)
    steps = np.arange(1, horizon + 1, dtype=np.float32)[None, :, None, None, None]
    return (last + steps).astype(np.float32)


class RecordingPredictor(list):
    """:func:`fake_predict` that records ``(frames, horizon)`` of every call (a list of them)."""

    def __call__(self, loaded, frames: np.ndarray, horizon: int) -> np.ndarray:
        self.append((frames.copy(), horizon))
        return fake_predict(loaded, frames, horizon)


def tiny_config(in_frames: int, out_frames: int, shape: tuple[int, int], **config: object):
    """The tiny one-channel :class:`SimVPConfig` of the checkpoint and pretrained-model helpers."""
    from simvp_model.config import SimVPConfig

    return SimVPConfig(
        in_frames=in_frames,
        out_frames=out_frames,
        channels=1,
        height=shape[0],
        width=shape[1],
        spatial_hidden=8,
        temporal_hidden=16,
        spatial_layers=2,
        temporal_layers=2,
        **config,
    )


def tiny_checkpoint(path: Path, *, in_frames: int = 4, out_frames: int = 3, shape=(32, 32)) -> Path:
    """Save a real, randomly initialised tiny SimVP checkpoint (seeded)."""
    import torch

    from simvp_model.checkpoint import save_checkpoint
    from simvp_model.model import SimVP
    from simvp_model.normalisation import Normalisation

    torch.manual_seed(0)
    config = tiny_config(in_frames, out_frames, shape)
    metadata = FakeLoaded(in_frames, out_frames).metadata
    save_checkpoint(
        path, SimVP(config), config, Normalisation("dbr", (0.0,), (10.0,), 0.1), {}, metadata
    )
    return path


def small_grid(crs: pyproj.CRS = LAEA, shape: tuple[int, int] = (4, 5)):
    """A tiny :class:`ForecastGrid` (north-up) for store tests."""
    from pipelines.forecast.store import ForecastGrid

    H, W = shape
    if crs.is_geographic:
        return ForecastGrid.from_coords(56.0 - np.arange(H) * 0.5, 8.0 + np.arange(W) * 0.5, crs)
    y = DENMARK_Y0 - np.arange(H) * 16_000.0
    x = DENMARK_X0 + np.arange(W) * 16_000.0
    return ForecastGrid.from_coords(y, x, crs)


def make_forecast(init: str, value: float, *, grid=None, n_leads: int = 3, checkpoint="ck.pt"):
    """One forecast (``build_forecast`` layout) filled with ``value`` + lead index."""
    from pipelines.forecast.store import Provenance, build_forecast

    grid = grid if grid is not None else small_grid()
    t = pd.Timestamp(init)
    H, W = grid.shape
    values = value + np.arange(n_leads, dtype=np.float32)[:, None, None] * np.ones((H, W))
    provenance = Provenance(
        checkpoint, "0" * 64, "test", "stores/x.zarr", pd.date_range(end=t, periods=2, freq=STEP)
    )
    return build_forecast(
        {"precipitation_rate": values},
        t,
        pd.to_timedelta(np.arange(1, n_leads + 1) * 5, "min"),
        grid,
        time_step="5min",
        source_name="synthetic",
        provenance=provenance,
        variable_attrs={"precipitation_rate": {"units": "mm/h", "standard_name": "rainfall_rate"}},
    )
