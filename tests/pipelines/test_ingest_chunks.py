"""Whole-chunk writes from decoded frames: the same bytes as Zarr's own writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from pipelines.ingest.chunks import ChunkWriter, chunk_encoder, write_frames

pytestmark = pytest.mark.timeout(60)
SHAPE = (8, 13, 10)  # (T, H, W): 13 x 10 is not a multiple of the 5 x 4 chunks (edge chunks)
CHUNKS = (4, 5, 4)


def _array(path: Path, compressors=None) -> zarr.Array:
    zstd = [zarr.codecs.ZstdCodec(level=3)] if compressors is None else compressors
    return zarr.create_array(
        str(path),
        shape=SHAPE,
        chunks=CHUNKS,
        dtype="float32",
        fill_value=np.nan,
        compressors=zstd,
        dimension_names=("time", "y", "x"),
    )


def _frames() -> list[np.ndarray | None]:
    rng = np.random.default_rng(0)
    frames: list[np.ndarray | None] = []
    for _ in range(SHAPE[0]):
        frame = rng.gamma(0.5, 2.0, SHAPE[1:]).astype("float32")  # (H, W) mm/h
        frame[:5, :4] = np.nan  # outside coverage: spatial chunk (0, 0) all NaN
        frames.append(frame)
    frames[2] = None  # a missing frame
    frames[4:8] = [np.full(SHAPE[1:], np.nan, dtype="float32")] * 4  # an all-NaN time chunk
    return frames


def _files(path: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def _expected(frames: list[np.ndarray | None]) -> np.ndarray:
    return np.stack([np.full(SHAPE[1:], np.nan, "float32") if f is None else f for f in frames])


@pytest.mark.parametrize("threads", [1, 3])
def test_chunk_files_are_byte_identical_to_zarr(tmp_path, threads):
    frames = _frames()
    reference = _array(tmp_path / "zarr.zarr")
    reference[:] = _expected(frames)
    ours = _array(tmp_path / "ours.zarr")
    assert chunk_encoder(ours) is not None  # the fast path is under test
    written = write_frames(ours, 0, frames, threads=threads)
    assert _files(tmp_path / "ours.zarr") == _files(tmp_path / "zarr.zarr")
    # 2 x 3 x 3 chunks, the all-NaN time chunk (9) and the corner chunk of each frame not
    # written, as Zarr does not write them
    assert written == 9 - 1 == len(_files(tmp_path / "ours.zarr")) - 1  # minus zarr.json


def test_rewriting_a_chunk_with_fill_values_deletes_it(tmp_path):
    frames = _frames()
    ours = _array(tmp_path / "ours.zarr")
    write_frames(ours, 0, [np.ones(SHAPE[1:], "float32")] * 8)
    write_frames(ours, 4, frames[4:])  # now all NaN: the stored chunks go, as with Zarr
    reference = _array(tmp_path / "zarr.zarr")
    reference[:] = np.ones(SHAPE, "float32")
    reference[4:] = np.nan
    assert _files(tmp_path / "ours.zarr") == _files(tmp_path / "zarr.zarr")
    np.testing.assert_array_equal(ours[:4], 1.0)


def test_other_codecs_go_through_zarr_with_the_same_values(tmp_path):
    frames = _frames()
    gzip = _array(tmp_path / "gzip.zarr", compressors=[zarr.codecs.GzipCodec(level=1)])
    assert chunk_encoder(gzip) is None
    write_frames(gzip, 0, frames)
    np.testing.assert_array_equal(gzip[:], _expected(frames))


def test_regions_that_are_not_whole_chunks_or_frames_of_another_grid_are_refused(tmp_path):
    ours = _array(tmp_path / "ours.zarr")
    frames = _frames()
    with pytest.raises(ValueError, match="not whole time chunks of 4"):
        write_frames(ours, 2, frames[:4])
    with pytest.raises(ValueError, match="inside the array's 8 frames"):
        write_frames(ours, 4, frames)
    with pytest.raises(ValueError, match=r"frame of shape \(13, 9\)"):
        write_frames(ours, 0, [np.zeros((13, 9), "float32")] * 4)
    assert _files(tmp_path / "ours.zarr").keys() == {"zarr.json"}  # nothing written


@pytest.mark.parametrize("threads", [1, 3])
def test_a_failed_check_leaves_that_chunk_and_later_ones_unwritten(tmp_path, threads):
    ours = _array(tmp_path / "ours.zarr")
    ones = np.ones(SHAPE[1:], "float32")

    def check(name, chunk, labels):
        if "bad" in labels:
            raise ValueError(f"{name}: bad frame among {list(labels)}")

    with (
        pytest.raises(ValueError, match=r"v: bad frame among \['ok', 'bad', 'ok', 'ok'\]"),
        ChunkWriter({"v": ours}, 0, 8, np.arange(8), threads=threads, check=check) as writer,
    ):
        for i in range(8):
            writer.put(i, {"v": ones}, "bad" if i == 5 else "ok")
    written = set(_files(tmp_path / "ours.zarr")) - {"zarr.json"}
    assert written == {f"c/0/{y}/{x}" for y in range(3) for x in range(3)}  # time chunk 0 only
