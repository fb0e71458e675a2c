"""Conservative resampling between a source's grid and a model's common grid (torch-free).

Why
---
A pretrained model works at one resolution (e.g. 4 km); a radar source may come at 1 km, 2 km
or 1.5 km on its own projection. :class:`GridResampler` maps the source's frames onto the
model's grid and the forecast back, so the forecast store keeps the source's grid and CRS.

Model grid
----------
:func:`model_grid` lays the model grid in the **source's own projected CRS** (a projected
composite's CRS is already a local, near-equal-area projection for its domain: Swiss oblique
Mercator, polar stereographic, Lambert conformal), axis-aligned with the source grid, with cells
of the model's resolution, centred on the source domain and padded to a multiple of the
network's downsampling factor. The extra cells outside the domain have no data (NaN).

Method (why conservative, and why not interpolation)
----------------------------------------------------
Rain must keep its mass (rain rate × area): an accumulation over a catchment does not change
because the model runs on coarser cells. Both grids are rectilinear in one CRS, so the exact
first-order *conservative* remap (area-weighted mean of overlapping cells) is **separable**:
the overlap area of two cells is the product of their overlap lengths along ``y`` and ``x``.
With ``Wy[i, j]`` the overlap length of target row ``i`` and source row ``j`` (and ``Wx``
likewise), a target cell is ``(Wy · (v·m) · Wxᵀ) / (Wy · m · Wxᵀ)``, ``m`` the finite mask
(NaN-aware: the mean over the cell's covered part). Coarsening 1 km → 4 km is then exactly the
4 × 4 block mean; any non-integer ratio (1.5 km → 4 km) is handled the same way. Going back
(:meth:`GridResampler.to_source`) uses the same overlaps transposed: each source cell takes the
area-weighted mean of the model cells it overlaps, so the total mass over the covered domain is
preserved in both directions. Bilinear interpolation (``xarray.interp``) would not conserve mass
and aliases when coarsening; ``scipy.ndimage.zoom`` assumes an integer-aligned grid;
pyresample is not a dependency. The matrices are dense ``(n_model, n_source)`` per axis (a few
hundred kB for a 1000-px domain).

Limits
------
The source grid must be projected (x/y in a linear unit, converted to metres by the CRS's axis
unit) and regular. A geographic (lat/lon) source raises ``ValueError``: it would need a real 2-D
reprojection, which this module does not do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyproj
import xarray as xr

from data_catalog.vocabulary import CRS, X, Y

__all__ = ["GridResampler", "RegularGrid", "model_grid", "overlap_matrix"]

#: Relative tolerance on the spacing of a "regular" axis.
REGULAR_RTOL = 1e-6


def _axis_step(values: np.ndarray, name: str) -> float:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"{name} must be a 1-D axis of at least 2 cells, got shape {values.shape}")
    steps = np.diff(values)
    step = float(np.mean(steps))
    if step == 0 or not np.allclose(steps, step, rtol=REGULAR_RTOL, atol=0):
        raise ValueError(
            f"{name} is not regular (spacing {steps.min():g} to {steps.max():g}): "
            "only regular grids can be resampled"
        )
    return step


@dataclass(frozen=True)
class RegularGrid:
    """A regular, axis-aligned projected grid: cell centres in metres and the CRS.

    Parameters
    ----------
    y : np.ndarray, shape (ny,)
        Row centres in metres (either direction; north-up stores run downwards).
    x : np.ndarray, shape (nx,)
        Column centres in metres.
    crs : pyproj.CRS
        A projected CRS (its axis unit converts the store's coordinates to metres).
    """

    y: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)
    crs: pyproj.CRS

    def __post_init__(self) -> None:
        if self.crs.is_geographic or not self.crs.is_projected:
            raise ValueError(
                f"CRS {self.crs.name!r} is not projected: resampling to a model grid in km "
                "needs a projected source grid (x/y in metres)"
            )
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.float64))
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.float64))
        _axis_step(self.y, "y")
        _axis_step(self.x, "x")

    @classmethod
    def from_store(
        cls, ds: xr.Dataset | xr.DataArray, crs: pyproj.CRS | None = None
    ) -> RegularGrid:
        """The grid of an observation store (its ``crs`` variable and ``y``/``x`` coordinates).

        Parameters
        ----------
        ds : xarray.Dataset or DataArray
            Has ``y``/``x`` coordinates in the CRS's axis unit and, unless ``crs`` is given, a
            CF ``crs`` grid-mapping variable.
        crs : pyproj.CRS, optional
            Overrides the ``crs`` variable.
        """
        if crs is None:
            if CRS not in ds.coords and (not isinstance(ds, xr.Dataset) or CRS not in ds):
                raise ValueError("the store has no 'crs' grid-mapping variable")
            crs = pyproj.CRS.from_cf(dict(ds[CRS].attrs))
        if crs.is_geographic or not crs.is_projected:
            raise ValueError(
                f"CRS {crs.name!r} is not projected: resampling to a model grid in km needs a "
                "projected source grid (x/y in metres)"
            )
        factor = float(crs.axis_info[0].unit_conversion_factor)  # axis unit → metres
        return cls(
            np.asarray(ds[Y].values, dtype=np.float64) * factor,
            np.asarray(ds[X].values, dtype=np.float64) * factor,
            crs,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return len(self.y), len(self.x)

    @property
    def spacing(self) -> tuple[float, float]:
        """Signed ``(dy, dx)`` in metres."""
        return _axis_step(self.y, "y"), _axis_step(self.x, "x")

    @property
    def resolution_m(self) -> float:
        """Cell size in metres (the larger of ``|dy|`` and ``|dx|``)."""
        dy, dx = self.spacing
        return max(abs(dy), abs(dx))

    def cell_area(self) -> float:
        """Area of one cell, m²."""
        dy, dx = self.spacing
        return abs(dy * dx)


def _edges(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper cell edges ``(n,)`` each (ascending within a cell)."""
    step = _axis_step(centres, "axis")
    half = abs(step) / 2
    return centres - half, centres + half


def overlap_matrix(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Overlap lengths of the cells of two regular 1-D axes.

    Parameters
    ----------
    target : np.ndarray, shape (n_t,)
        Cell centres (metres) of the target axis.
    source : np.ndarray, shape (n_s,)
        Cell centres (metres) of the source axis.

    Returns
    -------
    np.ndarray, shape (n_t, n_s), float64
        ``W[i, j]`` = length (metres) shared by target cell ``i`` and source cell ``j``.
    """
    t_lo, t_hi = _edges(np.asarray(target, dtype=np.float64))
    s_lo, s_hi = _edges(np.asarray(source, dtype=np.float64))
    lo = np.maximum(t_lo[:, None], s_lo[None, :])
    hi = np.minimum(t_hi[:, None], s_hi[None, :])
    return np.clip(hi - lo, 0.0, None)


def model_grid(source: RegularGrid, resolution_m: float, multiple: int = 1) -> RegularGrid:
    """The model's grid for a source: same CRS, ``resolution_m`` cells, centred, padded.

    Parameters
    ----------
    source : RegularGrid
        The source's grid.
    resolution_m : float
        Model cell size in metres (e.g. 4000).
    multiple : int
        Pad the cell counts up to a multiple of this (``2 ** downsampling_layers``).

    Returns
    -------
    RegularGrid
        Covers the source's extent (cells beyond it have no data), same axis directions.
    """
    if not resolution_m > 0:
        raise ValueError(f"resolution_m must be > 0, got {resolution_m!r}")
    if int(multiple) < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple!r}")
    axes = []
    for centres in (source.y, source.x):
        step = _axis_step(centres, "axis")
        extent = abs(step) * len(centres)
        n = int(np.ceil(extent / resolution_m - 1e-9))
        n = -(-n // int(multiple)) * int(multiple)
        middle = (centres[0] + centres[-1]) / 2
        offsets = (np.arange(n) - (n - 1) / 2) * resolution_m * np.sign(step)
        axes.append(middle + offsets)
    return RegularGrid(axes[0], axes[1], source.crs)


def _remap(values: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    """NaN-aware area-weighted mean ``(..., ny_s, nx_s) → (..., ny_t, nx_t)``."""
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0).astype(np.float64)
    total = wy @ filled @ wx.T  # (..., ny_t, nx_t), value × m²
    weight = wy @ finite.astype(np.float64) @ wx.T  # (..., ny_t, nx_t), m² of data
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    out[weight <= 0] = np.nan
    return out.astype(np.float32)


@dataclass(frozen=True)
class GridResampler:
    """Conservative remap between a source grid and a model grid in the same CRS.

    Parameters
    ----------
    source : RegularGrid
        The store's grid.
    target : RegularGrid
        The model's grid (:func:`model_grid`).
    """

    source: RegularGrid
    target: RegularGrid
    _wy: np.ndarray = field(init=False, repr=False)
    _wx: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.source.crs.equals(self.target.crs):
            raise ValueError(
                f"source CRS {self.source.crs.name!r} and model grid CRS "
                f"{self.target.crs.name!r} differ; build the model grid with model_grid()"
            )
        object.__setattr__(self, "_wy", overlap_matrix(self.target.y, self.source.y))
        object.__setattr__(self, "_wx", overlap_matrix(self.target.x, self.source.x))

    @classmethod
    def for_source(
        cls, source: RegularGrid, resolution_m: float, multiple: int = 1
    ) -> GridResampler:
        """The resampler from ``source`` to its :func:`model_grid`."""
        return cls(source, model_grid(source, resolution_m, multiple))

    @property
    def identity(self) -> bool:
        """Whether both grids are the same (no resampling needed)."""
        return (
            self.source.shape == self.target.shape
            and np.allclose(self.source.y, self.target.y)
            and np.allclose(self.source.x, self.target.x)
        )

    def to_model(self, frames: np.ndarray) -> np.ndarray:
        """Source frames ``(..., ny_s, nx_s)`` → model grid ``(..., ny_m, nx_m)`` float32.

        Each model cell is the area-weighted mean of the finite source pixels it covers; NaN
        where it covers none (outside the domain or no data).
        """
        values = np.asarray(frames)
        if values.shape[-2:] != self.source.shape:
            raise ValueError(
                f"frames end in {values.shape[-2:]}, the source grid is {self.source.shape}"
            )
        if self.identity:
            return values.astype(np.float32, copy=False)
        return _remap(values, self._wy, self._wx)

    def to_source(self, frames: np.ndarray) -> np.ndarray:
        """Model frames ``(..., ny_m, nx_m)`` → source grid ``(..., ny_s, nx_s)`` float32.

        Each source pixel is the area-weighted mean of the finite model cells it overlaps
        (piecewise constant at the model's resolution, mass-conserving).
        """
        values = np.asarray(frames)
        if values.shape[-2:] != self.target.shape:
            raise ValueError(
                f"frames end in {values.shape[-2:]}, the model grid is {self.target.shape}"
            )
        if self.identity:
            return values.astype(np.float32, copy=False)
        return _remap(values, self._wy.T, self._wx.T)
