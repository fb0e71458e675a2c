"""The verification page: self-contained, intervals shown, rendered by a headless Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipelines.verification.html import png_data_uri
from pipelines.verification.report import write_report
from pipelines.verification.spectral import WAVELENGTH
from tests.browser import chromium

pytestmark = pytest.mark.timeout(120)


def _scores() -> pd.DataFrame:
    rows = []
    for method, base in (("simvp", 1.0), ("persistence", 1.6)):
        for k, lead in enumerate((5.0, 10.0, 15.0)):
            value = base * (1 + k)
            rows.append(("mse", None, None, lead, value, value * 0.8, value * 1.2, method))
            rows.append(("csi", 1.0, None, lead, 0.6 / (1 + k), np.nan, np.nan, method))
            for wl in (8.0, 4.0):
                rows.append(("rapsd_ratio", None, wl, lead, 1 / (k + 1), np.nan, np.nan, method))
    cols = ["score", "threshold", "scale", "lead_time_minutes", "value", "lower", "upper", "method"]
    frame = pd.DataFrame(rows, columns=cols).assign(variable="precipitation_rate")
    return frame.astype({"threshold": "float64", "scale": "float64"})


def _spectra() -> dict[str, xr.DataArray]:
    lam = np.array([32.0, 16.0, 8.0, 4.0, 2.0])
    leads = pd.to_timedelta([5, 10, 15], "min").values
    power = xr.DataArray(
        np.outer([1.0, 1.0, 1.0], lam**2), dims=("lead_time", WAVELENGTH)
    ).assign_coords(lead_time=leads, wavelength=lam)
    return {"observed": power, "simvp": power * np.linspace(1, 0.2, 5)}


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, list[str]]:
    directory = tmp_path_factory.mktemp("report")
    comparisons = pd.DataFrame(
        {"method": ["simvp - persistence"], "lead": [5.0], "value": [-0.6], "lower": [-0.9]}
    )
    files = write_report(
        directory,
        _scores(),
        "Verification of test-radar",
        ["3 windows of 1 event"],
        spectra=_spectra(),
        provenance={"checkpoint": "models/x/best.pt", "seed": 0},
        comparisons=comparisons,
    )
    return directory / "index.html", files


def test_page_is_self_contained_with_intervals_and_every_figure(page) -> None:
    path, files = page
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)  # nothing fetched from outside
    images = re.findall(r'<img src="data:image/png;base64,', text)
    pngs = [f for f in files if f.endswith(".png")]
    assert len(images) == len(pngs) >= 3  # mse, csi, rapsd (no per-wavelength score plot)
    assert not any("score_rapsd_ratio" in f for f in files)
    assert "1 <small>[0.8, 1.2]</small>" in text  # simvp mse at +5 min with its interval
    assert "models/x/best.pt" in text and "simvp - persistence" in text
    md = (path.parent / "scores.md").read_text(encoding="utf-8")
    assert "| simvp |  |  | 1 [0.8, 1.2] |" in md
    with pytest.raises(ValueError, match="not a PNG"):
        png_data_uri(path)


def test_headless_chromium_renders_every_image(page, tmp_path) -> None:
    CHROMIUM = chromium()  # skips without a browser, fails when $CI is set
    path, files = page
    # A copy of the page with a script that records each image's decoded size after load.
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { document.body.setAttribute("
        "'data-sizes', Array.from(document.images).map(i => i.complete + ':' + i.naturalWidth"
        " + 'x' + i.naturalHeight).join(' ')); });</script>"
    )
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", script + "</body>"))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(
        [*args, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=90
    ).stdout
    sizes = re.search(r'data-sizes="([^"]*)"', dom)
    assert sizes, f"no data-sizes attribute in the DOM: {dom[:300]!r}"
    entries = sizes.group(1).split()
    assert len(entries) == sum(f.endswith(".png") for f in files)
    for entry in entries:
        complete, size = entry.split(":")
        width, height = (int(v) for v in size.split("x"))
        assert complete == "true" and width > 100 and height > 100, entry
    # A screenshot of the page itself is not blank.
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1200,2400", path.as_uri()],
        capture_output=True,
        timeout=90,
    )
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 2000 and float(pixels[..., :3].std()) > 0.05


def test_ensemble_diagrams_and_no_interval_from_one_group(tmp_path) -> None:
    import xarray as xr

    from pipelines.verification.ensemble_tables import rank_histogram_rows, reliability_rows

    rng = np.random.default_rng(0)
    members = rng.gamma(0.5, 3.0, size=(3, 4, 2, 1, 6, 6))  # (init, member, lead, chan, y, x)
    ens = xr.DataArray(
        members,
        dims=("init_time", "realization", "lead_time", "channel", "y", "x"),
        coords={
            "init_time": pd.date_range("2024-07-01", periods=3, freq="5min"),
            "lead_time": pd.to_timedelta([5, 10], "min"),
            "channel": ["precipitation_rate"],
        },
    )
    obs = ens.isel(realization=0, drop=True) * 1.2
    reliability = reliability_rows(obs, {"steps": ens}, [1.0, 5.0])
    assert len(reliability) == 2 * 2 * 10  # thresholds x leads x bins
    assert reliability.groupby(["threshold", "lead_time_minutes"])["count"].sum().eq(3 * 36).all()
    ranks = rank_histogram_rows(obs, {"steps": ens}, 0.1)
    assert sorted(ranks["rank"].unique()) == [0, 1, 2, 3, 4]
    files = write_report(
        tmp_path,
        _scores(),
        "one block",
        reliability=reliability,
        rank_histograms=ranks,
        n_groups=1,
    )
    names = {Path(f).name for f in files}
    assert {
        "reliability.csv",
        "rank_histogram.csv",
        "reliability.png",
        "rank_histogram.png",
    } <= names
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<small>[" not in text  # a one-group "interval" is a point: hidden
    assert text.index("<h2>Figures</h2>") < text.index("<h2>Scores</h2>")
    assert "[0.8, 1.2]" not in (tmp_path / "scores.md").read_text(encoding="utf-8")
    assert pd.read_csv(tmp_path / "scores.csv")["lower"].notna().any()  # the CSV keeps them
