"""Malicious files, generated tiny at test time, and a per-file peak-RSS measurement.

Each :data:`BOMBS` entry writes one file that is small on disk (a few KB to 1 MB) but declares or
inflates to hundreds of megabytes, with the catalog entry (a plain mapping) of a small or real
grid it claims to belong to:

- ``radolan-gz`` / ``radolan-bz2``: a RADOLAN RW header on the 900 x 900 grid followed by
  400 MB of zeros, gzip (multi-member) or bzip2 (multi-stream) compressed;
- ``fmi-pgm-gz``: an FMI PGM header declaring 20000 x 20000 pixels, 400 MB of zeros gzipped;
- ``netcdf-huge``: a netCDF variable declaring 1 x 10000 x 10000 float32 (never written, so
  the file is tiny; reading it fills 400 MB);
- ``odim-huge``: an ODIM_H5 dataset declaring 8000 x 8000 uint8 (unwritten chunks).

Run as a script to measure each file in its own process (the "before/after" table of issue 25)::

    PYTHONPATH=<tree> python tests/pipelines/hostile_files.py [--quick]

It uses only the standard library, numpy, h5py, netCDF4 and ``data_catalog``/``pipelines``
public names that exist before and after the hardening, so the same script measures both trees.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

MB = 1_000_000
BLOCK = 4 * MB  # one compressed member inflates to this; members are repeated

RADOLAN_CRS = (
    "+proj=stere +lat_0=90 +lat_ts=60 +lon_0=10 +R=6370040 +x_0=0 +y_0=0 +units=m +no_defs"
)
STERE = "+proj=stere +lat_0=90 +lon_0=10 +lat_ts=60 +ellps=WGS84 +units=m +no_defs"
LCC = (
    "+proj=lcc +lat_1=49.83333333333334 +lat_2=51.16666666666666 +lat_0=50.797815 "
    "+lon_0=4.359215833333333 +x_0=649328 +y_0=665262 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 "
    "+units=m +no_defs"
)


def _zeros_compressed(total: int, kind: str) -> bytes:
    """``total`` zero bytes (a multiple of :data:`BLOCK`) as concatenated gzip/bzip2 members."""
    compress = gzip.compress if kind == "gz" else bz2.compress
    member = compress(bytes(BLOCK), 9)
    return member * (total // BLOCK)


def radolan_entry() -> dict:
    """Catalog entry of a RADOLAN RW source on the 900 x 900 national grid."""
    x0, y0 = -523_462.2, -4_658_645.0
    return {
        "name": "dwd-radolan",
        "kind": "radar",
        "reader": "radolan",
        "path": "/data/raa01-rw-10000-%y%m%d%H%M-dwd---bin",
        "time_step": "1h",
        "variables": [{"name": "precipitation_rate", "units": "mm/h", "source": "RW"}],
        "grid": {
            "crs": RADOLAN_CRS,
            "shape": [900, 900],
            "extent": [x0, x0 + 900_000.0, y0, y0 + 900_000.0],
        },
    }


def radolan_header(rows: int = 900, cols: int = 900, interval: str = "   60") -> bytes:
    """A RW header (03 May 2018 10:50 UTC) declaring ``rows x cols`` (any text the tests need)."""
    body = f"VS 3SW   2.18.3PR E-01INT{interval}GP{rows:4d}x{cols:4d}MS 10<boo,ros>"
    return f"RW031050100000518BY{1_620_000:7d}{body}".encode("latin-1") + b"\x03"


def _radolan_bomb(directory: Path, kind: str) -> tuple[Path, dict]:
    path = directory / "raa01-rw-10000-1805031050-dwd---bin"
    kind_compress = gzip.compress if kind == "gz" else bz2.compress
    path.write_bytes(kind_compress(radolan_header()) + _zeros_compressed(400 * MB, kind))
    return path, radolan_entry()


def fmi_entry() -> dict:
    """The shipped catalog's ``fmi-radar`` entry (1226 x 760 grid)."""
    from data_catalog.catalog import load_catalog

    return load_catalog().get("fmi-radar").to_dict()


def _fmi_bomb(directory: Path) -> tuple[Path, dict]:
    side = 20_000  # declared 20000 x 20000: 400 MB of 8-bit pixels
    header = (
        b"P5\n# obstime 201609281505\n# param CorrectedReflectivity\n"
        + f"{side} {side}\n255\n".encode()
    )
    path = directory / "201609281505_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz"
    path.write_bytes(gzip.compress(header) + _zeros_compressed(side * side, "gz"))
    return path, fmi_entry()


def netcdf_entry() -> dict:
    """A CF-netCDF source of 3 x 4 pixels (the grid of ``test_readers_gridded``)."""
    return {
        "name": "nc-test",
        "kind": "radar",
        "reader": "cf-netcdf",
        "path": "/tmp/rain_%Y%m%d%H%M.nc",
        "time_step": "10min",
        "variables": [{"name": "precipitation_rate", "units": "mm/h", "source": "rain"}],
        "grid": {"crs": STERE, "shape": [3, 4], "extent": [0, 8000, -3000000, -2994000]},
    }


def write_netcdf(
    path: Path,
    shape: tuple[int, int] = (3, 4),
    time_units: str = "seconds since 2021-06-01",
    time_value: float = 0.0,
    time_as_variable: bool = False,
    write_data: bool = True,
) -> Path:
    """A one-frame netCDF ``rain(time, y, x)`` in mm/h; the time as a coordinate or (with
    ``time_as_variable``) a 0-d data variable ``valid_time``; unwritten data when
    ``write_data`` is False (the file stays tiny whatever ``shape`` declares)."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("y", shape[0])
        nc.createDimension("x", shape[1])
        if time_as_variable:
            t = nc.createVariable("valid_time", "f8", ())
            t.units = time_units
            t.assignValue(time_value)
        else:
            t = nc.createVariable("time", "f8", ("time",))
            t.units = time_units
            t[:] = [time_value]
        y = nc.createVariable("y", "f8", ("y",))
        y.units, y.axis = "m", "Y"
        x = nc.createVariable("x", "f8", ("x",))
        x.units, x.axis = "m", "X"
        if shape == (3, 4):
            y[:] = [-2995000.0, -2997000.0, -2999000.0]
            x[:] = [1000.0, 3000.0, 5000.0, 7000.0]
        chunks = (1, min(shape[0], 1000), min(shape[1], 1000))
        rain = nc.createVariable(
            "rain", "f4", ("time", "y", "x"), zlib=True, chunksizes=chunks, fill_value=0.0
        )
        rain.units = "mm/h"
        if write_data:
            rain[:] = np.ones((1, *shape), np.float32)
    return path


def _netcdf_bomb(directory: Path) -> tuple[Path, dict]:
    path = directory / "rain_202106010000.nc"
    return write_netcdf(path, shape=(10_000, 10_000), write_data=False), netcdf_entry()


def odim_entry() -> dict:
    """An ODIM_H5 reflectivity source of 3 x 4 pixels."""
    return {
        "name": "odim-test",
        "kind": "radar",
        "reader": "odim-h5",
        "path": "/tmp/odim_%Y%m%d%H%M.h5",
        "time_step": "15min",
        "variables": [
            {"name": "reflectivity", "units": "dBZ", "source": "DBZH", "valid_range": [-40, 100]}
        ],
        "grid": {"crs": LCC, "shape": [3, 4], "extent": [500000, 504000, 600000, 603000]},
    }


def write_odim(
    path: Path,
    shape: tuple[int, int] = (3, 4),
    gain: float = 0.5,
    date: bytes = b"20200101",
    write_data: bool = True,
) -> Path:
    """A one-dataset ODIM_H5 COMP file with DBZH ``shape`` (uint8, chunked)."""
    import h5py

    with h5py.File(path, "w") as h5:
        h5.attrs["Conventions"] = np.bytes_(b"ODIM_H5/V2_3")
        h5.create_group("what").attrs.update({"object": b"COMP", "date": date, "time": b"120000"})
        where = h5.create_group("where").attrs
        where["projdef"] = np.bytes_(LCC.encode())
        where.update({"xscale": 1000.0, "yscale": 1000.0})
        d1 = h5.create_group("dataset1")
        d1.create_group("what").attrs.update({"gain": gain, "offset": -32.0, "nodata": 255.0})
        d1.create_group("data1/what").attrs["quantity"] = np.bytes_(b"DBZH")
        chunks = (min(shape[0], 1000), min(shape[1], 1000))
        data = d1["data1"].create_dataset(
            "data", shape=shape, dtype="u1", chunks=chunks, compression="gzip", fillvalue=100
        )
        if write_data:
            data[...] = np.full(shape, 100, np.uint8)
    return path


def _odim_bomb(directory: Path) -> tuple[Path, dict]:
    path = directory / "odim_202001011200.h5"
    return write_odim(path, shape=(8_000, 8_000), write_data=False), odim_entry()


BOMBS: dict[str, Callable[[Path], tuple[Path, dict]]] = {
    "radolan-gz": lambda d: _radolan_bomb(d, "gz"),
    "radolan-bz2": lambda d: _radolan_bomb(d, "bz2"),
    "fmi-pgm-gz": _fmi_bomb,
    "netcdf-huge": _netcdf_bomb,
    "odim-huge": _odim_bomb,
}
"""Name -> writer ``(directory) -> (path, catalog entry)``."""

CHILD = """
import json, resource, sys
import pyproj  # PROJ before anything else (see tests/conftest.py)
from data_catalog.spec import SourceSpec
from pipelines.readers import read_file
path, entry = sys.argv[1], json.loads(sys.argv[2])
spec = SourceSpec.from_dict(entry)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_file(spec, path)
    message, kind = "read without error", "none"
except Exception as error:
    message, kind = str(error), type(error).__name__
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kib": before, "peak_kib": after, "error": kind, "message": message}))
"""
"""Reads one file in a fresh process; prints its peak RSS before/after (KiB) and the error."""


def measure(path: Path, entry: dict, limit_bytes: int | None = None) -> dict:
    """Read ``path`` with ``entry``'s reader in a subprocess; its peak RSS growth and error.

    ``limit_bytes`` caps the child's address space (``RLIMIT_AS``) so that an unbounded reader
    fails with ``MemoryError`` instead of exhausting the machine.
    """

    def cap() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(entry)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=cap,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"growth_mb": float("nan"), "error": f"exit {done.returncode}", "message":
                (done.stderr.strip().splitlines() or ["?"])[-1]}  # fmt: skip
    result = json.loads(lines[-1])
    result["growth_mb"] = (result["peak_kib"] - result["base_kib"]) * 1024 / MB
    return result


def main() -> None:
    """Print a markdown table: input, compressed size, peak RSS growth, error, message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two RADOLAN bombs only")
    parser.add_argument("--limit-gb", type=float, default=6.0, help="address-space cap")
    args = parser.parse_args()
    names = ["radolan-gz", "radolan-bz2"] if args.quick else list(BOMBS)
    print("| input | on disk | peak RSS growth | error | message |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            directory = Path(tmp, name)
            directory.mkdir()
            path, entry = BOMBS[name](directory)
            result = measure(path, entry, int(args.limit_gb * 1e9))
            message = result["message"].replace(str(path), "FILE").replace("|", "/")[:160]
            print(
                f"| {name} | {path.stat().st_size / 1e3:.0f} KB | {result['growth_mb']:.0f} MB "
                f"| {result['error']} | {message} |"
            )


if __name__ == "__main__":
    main()
