"""Windows, splits and the lazy Zarr dataset (pipelines/windows.py)."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pipelines import windows as W
from pipelines.windows import (
    TEST,
    TRAIN,
    UNUSED,
    VAL,
    SpatialConfig,
    SplitConfig,
    WindowConfig,
    ZarrWindows,
    assign_splits,
    block_mean,
    build_splits,
    contiguous_runs,
    prepare_frames,
    read_prepared,
    scan_store,
    window_starts,
)

STEP = pd.Timedelta("5min")


def write_store(
    path,
    n_frames: int,
    missing=(),
    all_nan=(),
    shape=(8, 12),
    start="2021-07-04T15:00",
    variables=("precipitation",),
    chunk_time=4,
):
    """A store following the observation-store contract: frame t holds ``t + pixel/1000``."""
    times = pd.date_range(start, periods=n_frames, freq=STEP)
    ny, nx = shape
    pixel = np.arange(ny * nx, dtype=np.float32).reshape(ny, nx) / 1000
    data = np.arange(n_frames, dtype=np.float32)[:, None, None] + pixel  # (T, y, x)
    present = np.ones(n_frames, dtype=bool)
    present[list(missing)] = False
    data[list(missing)] = np.nan
    data[list(all_nan)] = np.nan
    data_vars = {
        v: (("time", "y", "x"), data * (i + 1), {"units": "mm/h"}) for i, v in enumerate(variables)
    }
    data_vars["frame_present"] = (("time",), present)
    ds = xr.Dataset(
        data_vars,
        coords={"time": times, "y": np.arange(ny) * 1000.0, "x": np.arange(nx) * 1000.0},
        attrs={"time_step": "5min", "source_name": "synthetic"},
    )
    encoding = {v: {"chunks": (chunk_time, ny, nx)} for v in variables}
    ds.to_zarr(path, mode="w", encoding=encoding)
    return str(path)


# --------------------------------------------------------------------- index logic
def test_contiguous_runs_and_breaks():
    valid = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], bool)
    assert contiguous_runs(valid) == [(0, 2), (3, 6), (8, 9)]
    breaks = np.zeros(9, bool)
    breaks[4] = True  # irregular step before frame 4
    assert contiguous_runs(valid, breaks) == [(0, 2), (3, 4), (4, 6), (8, 9)]


def test_split_counts_and_boundaries_on_a_store_with_a_gap(tmp_path):
    # 60 frames, 15..17 never ingested, 40 present but all NaN; 3 -> 2 windows, gap 5.
    path = write_store(tmp_path / "s.zarr", 60, missing=(15, 16, 17), all_nan=(40,))
    index = scan_store(path, ["precipitation"], SpatialConfig())
    expected_valid = np.ones(60, bool)
    expected_valid[[15, 16, 17, 40]] = False
    np.testing.assert_array_equal(index.valid, expected_valid)
    window = WindowConfig(3, 2)
    splits = build_splits([index], window, SplitConfig((0.6, 0.2, 0.2)))
    # 56 valid frames - 2 gaps x 5 = 46 to share: val 9, test 9, train 28.
    # train = 0..14 + 18..30; val = first valid after 30 + 5 -> 36..39, 41..45; test = 51..59.
    labels = splits.labels[0]
    np.testing.assert_array_equal(np.flatnonzero(labels == TRAIN), [*range(15), *range(18, 31)])
    np.testing.assert_array_equal(
        np.flatnonzero(labels == VAL), [36, 37, 38, 39, 41, 42, 43, 44, 45]
    )
    np.testing.assert_array_equal(np.flatnonzero(labels == TEST), range(51, 60))
    starts = {k: [r.start for r in v] for k, v in splits.windows.items()}
    assert starts["train"] == [*range(0, 11), *range(18, 27)]  # nothing across 15..17
    assert starts["val"] == [41]  # 36..39 is too short, 40 is all-NaN
    assert starts["test"] == [51, 52, 53, 54, 55]
    assert splits.counts() == {"train": 20, "val": 1, "test": 5}
    assert splits.periods["train"] == ["2021-07-04T15:00:00Z", "2021-07-04T17:30:00Z"]
    assert splits.periods["test"] == ["2021-07-04T19:15:00Z", "2021-07-04T19:55:00Z"]


def _check_no_leakage(splits, gap):
    length = splits.window.length
    for s, index in enumerate(splits.indexes):
        ends = {}
        for k, name in enumerate(W.SPLITS):
            refs = [r for r in splits.windows[name] if r.store == s]
            for r in refs:
                frames = np.arange(r.start, r.start + length)
                assert index.valid[frames].all(), (
                    f"{name} window at {r.start} uses an invalid frame"
                )
                assert (splits.labels[s][frames] == k).all()
                assert (np.diff(index.steps[frames]) == 1).all()
            if refs:
                ends[k] = (min(r.start for r in refs), max(r.start for r in refs) + length - 1)
        for a, b in ((TRAIN, VAL), (VAL, TEST), (TRAIN, TEST)):
            if a in ends and b in ends:
                # max target time of the earlier split + gap < min input time of the later one
                assert index.steps[ends[a][1]] + gap < index.steps[ends[b][0]]


@pytest.mark.parametrize("by", ["time", "event"])
def test_no_leakage_on_random_masks(by):
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        n = int(rng.integers(40, 200))
        valid = rng.random(n) > rng.uniform(0, 0.15)
        window = WindowConfig(int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        gap = int(rng.integers(0, 8))
        index = W.StoreIndex(
            "mem", np.arange(n), valid, np.zeros(n, bool), np.arange(n), STEP, (1, 1), [""], None
        )
        try:
            splits = build_splits([index], window, SplitConfig((0.7, 0.15, 0.15), gap, by))
        except ValueError as error:  # only "too little data for three splits" may be refused
            refusals = ("valid frames", "segment", "lost all its frames")
            assert any(r in str(error) for r in refusals), error
            continue
        _check_no_leakage(splits, gap)
        checked += 1
    assert checked >= 100, f"only {checked} of 200 random cases were split and checked"


def test_too_short_store_raises_with_numbers():
    with pytest.raises(ValueError, match="only 20 valid frames.*need 34"):
        assign_splits(np.ones(20, bool), (0.7, 0.15, 0.15), gap=8, min_frames=6)


def test_event_split_gives_whole_events():
    # Three 10-frame events separated by missing stretches (one store per source).
    valid = np.zeros(60, bool)
    valid[0:10] = valid[25:35] = valid[50:60] = True
    labels = assign_splits(valid, (0.6, 0.2, 0.2), gap=4, min_frames=4, by="event")
    np.testing.assert_array_equal(labels[0:10], TRAIN)
    np.testing.assert_array_equal(labels[25:35], VAL)
    np.testing.assert_array_equal(labels[50:60], TEST)
    assert (labels[~valid] == UNUSED).all()
    # Events closer than the gap lose their first frames.
    valid = np.zeros(30, bool)
    valid[0:10] = valid[12:20] = valid[22:30] = True
    labels = assign_splits(valid, (0.4, 0.3, 0.3), gap=4, min_frames=2, by="event")
    np.testing.assert_array_equal(np.flatnonzero(labels == VAL), range(14, 20))
    np.testing.assert_array_equal(np.flatnonzero(labels == TEST), range(24, 30))


def test_window_starts_with_stride():
    labels = np.array([TRAIN] * 10 + [UNUSED] + [TRAIN] * 4)
    assert window_starts(labels, TRAIN, 4, stride=3).tolist() == [0, 3, 6, 11]


# ------------------------------------------------------------------ spatial steps
def test_block_mean_is_nan_aware():
    a = np.array([[1, 3, np.nan, np.nan], [np.nan, 5, np.nan, np.nan]], np.float32)
    out = block_mean(a[None], 2)[0]
    np.testing.assert_array_equal(out, [[3.0, np.nan]])
    with pytest.raises(ValueError, match="not divisible"):
        block_mean(np.zeros((3, 4)), 2)


def test_spatial_config_validation():
    with pytest.raises(ValueError, match="not divisible by coarsen=4"):
        SpatialConfig(crop=(0, 10, 0, 8), coarsen=4).prepared_shape(20, 20)
    with pytest.raises(ValueError, match="exceeds"):
        SpatialConfig(crop=(0, 30, 0, 8)).prepared_shape(20, 20)
    assert SpatialConfig(crop=(2, 10, 4, 12), coarsen=2).prepared_shape(20, 20) == (4, 4)


def test_prepare_frames_matches_the_dataset_path(tmp_path):
    path = write_store(tmp_path / "s.zarr", 12, all_nan=(3,), variables=("a", "b"))
    meta = {"variables": ["b", "a"], "crop": [2, 6, 0, 8], "coarsen": 2}
    ds = xr.open_zarr(path)
    frames = prepare_frames(ds, meta)
    assert frames.dims == ("time", "channel", "y", "x")
    assert frames.shape == (12, 2, 2, 4)
    assert list(frames["channel"].values) == ["b", "a"]
    spatial = W.spatial_config_from(meta)
    direct = read_prepared(W.open_store(path), ["b", "a"], spatial, 0, 12)
    np.testing.assert_allclose(frames.values, direct, rtol=1e-6)
    # hand value: block rows 2..3, cols 0..1 of frame 5, channel b (= 2 x a)
    pixel = np.array([[24, 25], [36, 37]]) / 1000
    np.testing.assert_allclose(direct[5, 0, 0, 0], 2 * (5 + pixel.mean()), rtol=1e-6)
    assert np.isnan(direct[3]).all()
    np.testing.assert_allclose(frames["y"].values, [2500.0, 4500.0])


# ------------------------------------------------------------------------ dataset
def _dataset(path, window, spatial=None, split=None, **kw):
    spatial = spatial or SpatialConfig()
    split = split or SplitConfig((0.6, 0.2, 0.2))
    index = scan_store(path, ["precipitation"], spatial)
    splits = build_splits([index], window, split)
    return splits, {
        name: ZarrWindows([path], ["precipitation"], refs, window, spatial, index.shape, **kw)
        for name, refs in splits.windows.items()
    }


def test_dataset_items_are_the_right_frames(tmp_path):
    path = write_store(tmp_path / "s.zarr", 60, missing=(15, 16, 17), all_nan=(40,))
    splits, data = _dataset(path, WindowConfig(3, 2))
    x, y = data["train"][11]  # train window 11 starts at frame 18
    assert x.shape == (3, 1, 8, 12) and y.shape == (2, 1, 8, 12)
    assert x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 0, 0, 0].numpy(), [18, 19, 20])
    np.testing.assert_allclose(y[:, 0, 0, 0].numpy(), [21, 22])
    np.testing.assert_allclose(y[1, 0, 1, 2].item(), 22 + 14 / 1000, rtol=1e-6)
    with pytest.raises(IndexError):
        data["train"][len(data["train"])]


def test_nan_fill_and_encode(tmp_path):
    path = write_store(tmp_path / "s.zarr", 30)
    ds = xr.open_zarr(path)
    values = ds["precipitation"].values
    values[:, 0, :] = np.nan  # first row outside "radar range"
    ds.assign(precipitation=(("time", "y", "x"), values)).to_zarr(path, mode="a")
    encode = lambda a: (a - 10.0) / 2.0  # noqa: E731
    _, data = _dataset(path, WindowConfig(2, 2), encode=encode, fill=np.array([-7.0]))
    x, y = data["train"][3]
    assert torch.isfinite(x).all() and torch.isfinite(y).all()
    np.testing.assert_allclose(x[:, 0, 0, :].numpy(), -7.0)
    np.testing.assert_allclose(x[0, 0, 1, 0].item(), (3 + 12 / 1000 - 10) / 2, rtol=1e-6)


def test_crop_coarsen_and_tiles(tmp_path):
    path = write_store(tmp_path / "s.zarr", 30, shape=(8, 12))
    spatial = SpatialConfig(crop=(0, 8, 0, 12), coarsen=2, tile=(2, 3))
    _, data = _dataset(path, WindowConfig(2, 1), spatial)
    train = data["train"]
    # prepared grid 4 x 6 -> 2 x 2 tiles of 2 x 3 per window
    assert len(train) == 4 * len(train.windows)
    assert train.sample_shape == (1, 2, 3)
    x, _ = train[3]  # window 0, tile (2, 3) -> original rows 4..7, cols 6..11
    block = (np.arange(96).reshape(8, 12)[4:6, 6:8]).mean() / 1000
    np.testing.assert_allclose(x[0, 0, 0, 0].item(), 0 + block, rtol=1e-5)
    rnd = ZarrWindows(
        [path], ["precipitation"], train.windows, train.window,
        SpatialConfig(coarsen=2, tile=(2, 3), tile_mode="random"), (4, 6), seed=1,
    )  # fmt: skip
    assert len(rnd) == len(train.windows)
    assert rnd[0][0].shape == (2, 1, 2, 3)


def test_several_stores_as_one_dataset(tmp_path):
    a = write_store(tmp_path / "a.zarr", 40, start="2015-05-15T15:45")
    b = write_store(tmp_path / "b.zarr", 40, missing=(20,), start="2016-07-11T20:45")
    window, split = WindowConfig(3, 3), SplitConfig((0.6, 0.2, 0.2), gap=2)
    indexes = [scan_store(p, ["precipitation"], SpatialConfig()) for p in (a, b)]
    splits = build_splits(indexes, window, split)
    assert {r.store for r in splits.windows["train"]} == {0, 1}
    assert all(not (r.start <= 20 < r.start + 6) for r in splits.windows["train"] if r.store == 1)
    _check_no_leakage(splits, 2)
    train = ZarrWindows(
        [a, b], ["precipitation"], splits.windows["train"], window, SpatialConfig(), (8, 12)
    )
    last = splits.windows["train"][-1]
    x, _ = train[len(train) - 1]
    assert last.store == 1
    np.testing.assert_allclose(x[0, 0, 0, 0].item(), last.start)
    assert splits.periods["train"][0] == "2015-05-15T15:45:00Z"


def test_dataset_reads_lazily_and_pickles(tmp_path):
    # 600 frames of 64 x 64 (~10 MB as float32): a sample must read only its own frames.
    path = write_store(tmp_path / "big.zarr", 600, shape=(64, 64), chunk_time=8)
    index = scan_store(path, ["precipitation"], SpatialConfig())
    splits = build_splits([index], WindowConfig(4, 4), SplitConfig())
    train = ZarrWindows(
        [path], ["precipitation"], splits.windows["train"], WindowConfig(4, 4), SpatialConfig(),
        index.shape,
    )  # fmt: skip
    train[0]  # open the store outside the measurement
    tracemalloc.start()
    for item in (5, 100, 300):
        train[item]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Chunks of 8 frames: each 8-frame window touches at most two chunks (item 0's first
    # chunk was read before the measurement and is cached).
    assert train.frames_read <= 8 + 3 * 2 * 8
    assert peak < 2_000_000, f"{peak=} bytes: the dataset read more than its windows"
    clone = pickle.loads(pickle.dumps(train))
    assert clone._handles == {}
    torch.testing.assert_close(clone[7][1], train[7][1])
    loader = torch.utils.data.DataLoader(train, batch_size=4)
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 4, 1, 64, 64) and yb.shape == (4, 4, 1, 64, 64)


# ------------------------------------------------------------- catalog sources
def synthetic_catalog(transform="dbr", kind="radar"):
    from data_catalog.catalog import parse_catalog

    hint = {"transform": transform, **({"threshold": 0.1} if transform == "dbr" else {})}
    entry = {
        "kind": kind,
        "reader": "none",
        "path": "/nowhere/%Y%m%d%H%M.h5",
        "time_step": "5min",
        "variables": [
            {"name": "precipitation", "units": "mm/h", "source": "RATE", "normalisation": hint}
        ],
        "grid": {"crs": "EPSG:4326", "shape": [8, 12], "extent": [0.0, 12.0, 0.0, 8.0]},
    }
    return parse_catalog({"version": 1, "sources": {"synthetic": entry}})


def test_source_windows_normalisation_and_metadata(tmp_path):
    from simvp_model.normalisation import fit_from

    path = write_store(tmp_path / "stores" / "synthetic.zarr", 60, missing=(15, 16, 17))
    catalog = synthetic_catalog()
    got = W.source_windows(
        "synthetic", tmp_path, 3, 2, catalog, crop=(0, 8, 0, 8), coarsen=2,
        split=SplitConfig((0.6, 0.2, 0.2)),
    )  # fmt: skip
    meta = got.metadata
    assert meta["crop"] == [0, 8, 0, 8] and meta["coarsen"] == 2 and meta["grid"] == [4, 4]
    assert meta["variables"] == ["precipitation"] and meta["units"] == ["mm/h"]
    assert meta["windows"] == got.splits.counts()
    assert meta["store"] == path and meta["split"]["gap"] == 5
    assert meta["train_period"][0] == "2021-07-04T15:00:00Z"
    # Normalisation = fit_from on exactly the frames of the train windows (nothing else).
    train_mask = got.splits.frames_in("train", 0)
    frames = read_prepared(W.open_store(path), ["precipitation"], got.train.spatial, 0, 60)
    expected = fit_from(frames[train_mask], "dbr", 0.1)
    np.testing.assert_allclose(got.normalisation.offset, expected.offset, rtol=1e-6)
    np.testing.assert_allclose(got.normalisation.scale, expected.scale, rtol=1e-5)
    x, y = got.train[0]
    np.testing.assert_allclose(x.numpy(), expected.encode(frames[0:3]), rtol=1e-5, atol=1e-5)
    # DataSplits for the engine carry the metadata as description.
    data = got.data_splits()
    assert dict(data.description) == meta and data.normalisation == got.normalisation
    # Rebuilding from the metadata gives the same windows.
    again = W.windows_from_metadata(meta, catalog=catalog)
    assert again.splits.windows == got.splits.windows
    assert again.normalisation == got.normalisation


def test_source_windows_defaults_and_errors(tmp_path):
    write_store(tmp_path / "stores" / "synthetic.zarr", 60, shape=(8, 12))
    catalog = synthetic_catalog("log1p", kind="crowd-flow")
    got = W.source_windows("synthetic", tmp_path, catalog=catalog, multiple=4)
    # crowd-flow default: 4 -> 4, whole grid trimmed to multiples of 4 (8 x 12 stays).
    assert (got.train.window.in_frames, got.train.window.out_frames) == (4, 4)
    assert got.metadata["crop"] is None and got.metadata["nan_fill"] == "zero"
    assert W.centred_crop(33, 49, None, 4) == (0, 32, 0, 48)
    assert W.centred_crop(640, 710, (512, 512), 8) == (64, 576, 99, 611)
    with pytest.raises(FileNotFoundError, match="ingest it first"):
        W.source_windows("synthetic", tmp_path / "elsewhere", catalog=catalog)
    with pytest.raises(ValueError, match="need 70"):
        W.source_windows("synthetic", tmp_path, 8, 6, catalog)


def test_one_timeline_across_stores():
    # Two stores of one step: a = frames at steps 0..19, b = steps 100..119 and 200..219.
    def index(start, valid):
        n = len(valid)
        times = np.datetime64("2020-01-01T00:00") + (start + np.arange(n)) * np.timedelta64(5, "m")
        return W.StoreIndex(
            "m", times, valid, np.zeros(n, bool), np.arange(n), STEP, (1, 1), [""], None
        )

    valid_b = np.zeros(120, bool)
    valid_b[:20] = valid_b[100:] = True
    a, b = index(0, np.ones(20, bool)), index(100, valid_b)
    window = WindowConfig(2, 2)
    splits = build_splits([a, b], window, SplitConfig((0.34, 0.33, 0.33), 0, "event", "all"))
    # Events in time order: a (train), b's first (val), b's second (test).
    assert (splits.labels[0] == TRAIN).all()
    np.testing.assert_array_equal(splits.labels[1][:20], VAL)
    np.testing.assert_array_equal(splits.labels[1][100:], TEST)
    assert splits.counts() == {"train": 17, "val": 17, "test": 17}
    by_time = build_splits([a, b], window, SplitConfig((0.5, 0.25, 0.25), 4, "time", "all"))
    # 60 valid frames - 2 gaps x 4 = 52: val 13, test 13, train 26 (a + 6 frames of b).
    np.testing.assert_array_equal(np.flatnonzero(by_time.labels[1] == TRAIN), range(6))
    # val starts more than 4 steps after step 105: b's frames 10..19, 100..102 (13 frames)
    val = np.flatnonzero(by_time.labels[1] == VAL)
    np.testing.assert_array_equal(val, [*range(10, 20), 100, 101, 102])
    np.testing.assert_array_equal(np.flatnonzero(by_time.labels[1] == TEST), range(107, 120))
    assert by_time.periods["train"][0] == "2020-01-01T00:00:00Z"


def test_several_sources_with_their_own_crops(tmp_path):
    from data_catalog.catalog import parse_catalog

    entry = synthetic_catalog().sources["synthetic"].to_dict()
    entry.pop("name")
    catalog = parse_catalog({"version": 1, "sources": {"syn-a": entry, "syn-b": entry}})
    write_store(tmp_path / "stores" / "syn-a.zarr", 40, shape=(8, 12), start="2020-01-01")
    write_store(tmp_path / "stores" / "syn-b.zarr", 40, shape=(12, 8), start="2021-01-01")
    got = W.source_windows("syn-a,syn-b", tmp_path, 2, 2, catalog, coarsen=2, multiple=2)
    meta = got.metadata
    # Kind default (radar): centred crops of each grid, sides multiples of 4, one common grid.
    assert meta["source"] == "syn-a+syn-b" and meta["sources"] == ["syn-a", "syn-b"]
    assert meta["crops"] == {"syn-a": [0, 8, 2, 10], "syn-b": [2, 10, 0, 8]}
    assert meta["grid"] == [4, 4]
    assert {r.store for r in got.test.windows} == {0, 1}
    ref = next(r for r in got.test.windows if r.store == 1)
    x, _ = got.test[got.test.windows.index(ref)]
    pixel = np.arange(96).reshape(12, 8)[2:4, 0:2].mean() / 1000  # first block of b's crop
    expected = got.normalisation.encode(np.full((1, 1, 1, 1), ref.start + pixel, np.float32))
    np.testing.assert_allclose(x[0, 0, 0, 0].item(), expected.item(), rtol=1e-5)
    # prepare_frames picks the crop of the store's own source.
    ds = xr.open_zarr(tmp_path / "stores" / "syn-b.zarr").assign_attrs(source_name="syn-b")
    assert prepare_frames(ds, meta).shape == (40, 1, 4, 4)
    again = W.windows_from_metadata(meta, catalog=catalog)
    assert again.splits.windows == got.splits.windows
    with pytest.raises(ValueError, match="stores= applies to a single source"):
        W.source_windows(["syn-a", "syn-b"], tmp_path, catalog=catalog, stores=["x"])


def test_block_cache_is_bounded_and_transparent(tmp_path):
    path = write_store(tmp_path / "s.zarr", 100, shape=(4, 4), chunk_time=5)
    index = scan_store(path, ["precipitation"], SpatialConfig())
    refs = build_splits([index], WindowConfig(3, 3), SplitConfig()).windows["train"]
    block = 5 * 1 * 4 * 4 * 4  # bytes of one prepared chunk
    args = ([path], ["precipitation"], refs, WindowConfig(3, 3), SpatialConfig(), (4, 4))
    cached = ZarrWindows(*args, cache_bytes=3 * block)
    plain = ZarrWindows(*args, cache_bytes=0)
    for item in [0, 1, 2, 30, 3, 50, 10, 11]:
        torch.testing.assert_close(cached[item], plain[item])
        assert cached._cached_bytes <= 3 * block
    assert cached.frames_read < plain.frames_read
    raw = cached.read_physical(0)
    raw[:] = -1  # callers may modify what they get without touching the cache
    np.testing.assert_allclose(cached.read_physical(0)[:, 0, 0, 0], range(6))
