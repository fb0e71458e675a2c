"""The work of an ingest that runs on the workers, and the executors that run it.

:func:`pipelines.ingest.ingest_source` (the *client*) holds file lists, timestamps and
metadata only; decoded arrays never travel through it. Each task is a plain function call
whose arguments are a catalog spec, the reader function, file paths and timestamps (a few
KiB pickled), run on one of three executors (:func:`task_executor`):

- ``None`` / ``"threads"``: a thread pool in this process (Dask's ``num_workers`` setting,
  else one thread per core);
- ``"synchronous"``: inline, in this thread (debugging, profiling);
- a ``dask.distributed`` scheduler address (``tcp://host:8786``) or ``Client``: the
  cluster's workers (threads or processes, on this or other machines). The store must then be
  on storage the workers can write (a shared file system or an object store).

Phase 1 (:func:`inspect_files`, a group of files per task) decodes and validates each file
and returns a :class:`FileSummary` per file (its timestamps, value ranges, masked-pixel count,
or the problem). Phase 2 (:func:`write_batch`) decodes the files of one batch of whole time
chunks *again*, validates them again and checks they still give the timestamps phase 1 saw,
and writes the batch's region with :func:`pipelines.ingest.writer.write_region`: each time
chunk is encoded (on a few threads) as soon as its files are decoded, while the next files
are decoded. A file that went bad between the phases stops its batch there: chunks already
written hold validated frames and the kept ones, the batch's frames stay marked absent, and
the retry rewrites them. Tasks are sized by :func:`tasks_for` (several per worker).

Re-decoding rather than spilling decoded frames to a temporary file keeps phase 2 independent
of where phase 1 ran (a batch may be written by another machine than the one that validated
its files) and needs no scratch disk proportional to the ingest;
``benchmarks/ingest_scaling.py`` measures what it costs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import vocabulary as voc
from data_catalog.catalog import SourceFile
from data_catalog.spec import SourceSpec
from pipelines.ingest import writer as wr
from pipelines.ingest.store import StoreLayout
from pipelines.ingest.writer import IngestError

log = logging.getLogger(__name__)

Reader = Callable[[str, SourceSpec], Any]
"""``(path, spec) -> Frames | xarray.Dataset`` for one file."""
TRANSIENT = (FileNotFoundError, PermissionError, ConnectionError, TimeoutError)
"""I/O errors passed through unchanged (a retry may succeed), not reported as bad input."""
LOCAL_SCHEDULERS = ("threads", "synchronous", "sync", "single-threaded")
IN_FLIGHT_PER_WORKER = 2
"""Tasks submitted ahead per worker thread: keeps workers busy while the client bounds the
number of pending futures (and so its memory) however many files there are."""
TASKS_PER_WORKER = 4
"""Phase 1 and 2 are cut into at least this many tasks per worker thread (when there are
enough files / time chunks): fewer, larger tasks pay less per-task overhead (a ``distributed``
task costs a few ms of scheduling and round trips, as much as decoding a small file), while
four per worker keeps the last tasks from leaving workers idle."""
MAX_FILES_PER_TASK = 16
"""At most this many files are checked by one phase-1 task (the granularity of the fail-fast
stop after a bad file, and of the progress bar)."""


@dataclass(frozen=True)
class FileSummary:
    """What phase 1 learned about one file (small: no arrays but the timestamps).

    Parameters
    ----------
    path : str
        The file.
    expected_time : pandas.Timestamp or None
        Time parsed from the file name (single-frame files).
    times : pandas.DatetimeIndex
        Its frames inside the ingested period, shape ``(T,)``.
    ranges : dict
        Variable name -> ``(min, max)`` of its finite values in those frames (NaN if none).
    masked : int
        Pixels the reader masked to NaN as out of range (0 unless the reader reports it).
    problem : str or None
        Why the file cannot be ingested (bad input), else None.
    """

    path: str
    expected_time: pd.Timestamp | None
    times: pd.DatetimeIndex
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    masked: int = 0
    problem: str | None = None


def decode_file(
    spec: SourceSpec,
    read: Reader,
    file: SourceFile,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    check_values: bool = True,
) -> tuple[Any, pd.DatetimeIndex, dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Decode and validate one file; frames outside ``[lo, hi]`` are left out.

    ``check_values=False`` (phase 2) leaves the value-range check to the chunk writer, which
    makes it on each chunk before writing it (:func:`pipelines.ingest.writer.write_region`);
    ``ranges`` is then empty. Dataset readers are always checked in full.

    Returns
    -------
    (raw, times, data, ranges)
        The reader's output (``Frames``, or the validated ``Dataset``), the kept times
        ``(T,)``, the spec's variables as float32 arrays ``(T, H, W)`` and each variable's
        ``(min, max)`` over the kept frames (NaN if all NaN).

    Raises
    ------
    IngestError
        The file is bad input (the message names it).
    """
    from pipelines.readers.base import Frames

    try:
        raw = read(file.path, spec)
        if not isinstance(raw, Frames | xr.Dataset):
            raise TypeError(f"a reader must return Frames or a Dataset, got {type(raw)}")
    except TRANSIENT:
        raise
    except IngestError:
        raise
    except Exception as error:  # any decoder failure is bad input: say which file
        message = str(error)
        if file.path not in message:
            message = f"{file.path}: cannot read ({type(error).__name__}: {message})"
        raise IngestError(message) from error
    ranges: dict[str, tuple[float, float]] = {}
    if isinstance(raw, xr.Dataset):
        raw = wr.validate_frames(raw, spec, file.path, expected_time=file.time)
        times = pd.DatetimeIndex(raw[voc.TIME].values)
        data = {name: np.asarray(raw[name].values) for name in spec.variable_names}
    else:
        times, data = wr.validate_arrays(
            raw.times, raw.data, spec, file.path, file.time, ranges, check_values
        )
    if file.time is None and (lo is not None or hi is not None):
        inside = np.asarray((lo is None or times >= lo) & (hi is None or times <= hi))
        times = times[inside]
        data = {name: values[inside] for name, values in data.items()}
        ranges = {}
    for name, values in data.items() if check_values else ():
        if name not in ranges:  # frames left out, or a Dataset reader: two more passes
            lowest = float(np.fmin.reduce(values, axis=None)) if values.size else np.nan
            highest = float(np.fmax.reduce(values, axis=None)) if values.size else np.nan
            ranges[name] = (lowest, highest)
    return raw, times, data, ranges


def masked_pixels(raw: Any, times: pd.DatetimeIndex) -> int:
    """Out-of-range values the reader masked to NaN in the frames at ``times`` (0 if none).

    HOOK (issue 11, the readers' quality control): a reader whose source says
    ``reader_options.out_of_range: mask`` reports per-frame counts as ``Frames.qc_masked``
    (variable -> int64 ``(T,)``) or, for a Dataset, the variable attr ``qc_masked_count``
    (a total). Readers without it count 0; nothing else in the ingest depends on it.
    """
    counts = getattr(raw, "qc_masked", None)
    if counts:
        inside = np.isin(np.asarray(raw.times, dtype="datetime64[ns]"), times.values)  # (T,)
        return int(sum(int(np.asarray(c)[inside].sum()) for c in counts.values()))
    if isinstance(raw, xr.Dataset):
        return int(sum(int(raw[n].attrs.get("qc_masked_count", 0)) for n in raw.data_vars))
    return 0


@functools.lru_cache(maxsize=4)
def _store_reference(path: str, token: str) -> xr.Dataset:
    """Coords, ``crs`` and variable attrs of an existing store, read once per worker and run
    (``token`` names the ingest run, so a later run reads the store again)."""
    with xr.open_zarr(path, decode_coords="all", chunks=None) as ds:
        keep = [voc.CRS, *(n for n in ds.data_vars if voc.TIME in ds[n].dims)]
        ref = ds[keep].drop_vars([voc.LATITUDE, voc.LONGITUDE], errors="ignore")
        return ref.isel({voc.TIME: slice(0, 0)}).load()


def inspect_file(
    spec: SourceSpec,
    read: Reader,
    file: SourceFile,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    store: tuple[str, str] | None = None,
) -> FileSummary:
    """Phase 1 on a worker: decode and validate one file, return its summary.

    Parameters
    ----------
    store : (path, token), optional
        An existing store: files read as a Dataset (each with its own grid) are checked
        against its grid, CRS and units.
    """
    try:
        raw, times, _, ranges = decode_file(spec, read, file, lo, hi)
        if store is not None and isinstance(raw, xr.Dataset):
            wr.check_against_store(raw, _store_reference(*store), file.path)
    except IngestError as error:
        return FileSummary(file.path, file.time, pd.DatetimeIndex([]), problem=str(error))
    return FileSummary(file.path, file.time, times, ranges, masked_pixels(raw, times))


def inspect_files(
    spec: SourceSpec,
    read: Reader,
    files: Sequence[SourceFile],
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    store: tuple[str, str] | None = None,
) -> list[FileSummary]:
    """Phase 1 on a worker for a group of files (one task): :func:`inspect_file` of each."""
    return [inspect_file(spec, read, file, lo, hi, store) for file in files]


def tasks_for(items: int, workers: int, largest: int) -> int:
    """Items per task: enough tasks for :data:`TASKS_PER_WORKER` per worker, at most
    ``largest`` items each, at least one."""
    return max(1, min(largest, -(-items // (TASKS_PER_WORKER * max(1, workers)))))


def grid_of_file(spec: SourceSpec, read: Reader, file: SourceFile) -> xr.Dataset:
    """Coords, ``crs`` and variable attrs of one file's frames (what a store template needs).

    Small next to the frames: ``y``, ``x``, 2-D ``latitude``/``longitude`` and attrs.
    """
    from pipelines.readers.base import frames_to_dataset

    raw, _, _, _ = decode_file(spec, read, file, None, None)
    ds = raw if isinstance(raw, xr.Dataset) else frames_to_dataset(spec, [raw])
    coords = {name: ds[name].variable for name in (voc.Y, voc.X, voc.LATITUDE, voc.LONGITUDE)}
    data_vars = {
        name: ds[name].isel({voc.TIME: 0}).variable if voc.TIME in ds[name].dims else ds[name]
        for name in ds.data_vars
    }
    return xr.Dataset(data_vars, coords=coords)


def write_batch(
    spec: SourceSpec,
    read: Reader,
    path: str,
    layout: StoreLayout,
    members: Sequence[FileSummary],
    keep: np.ndarray,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
) -> tuple[int, int, np.ndarray]:
    """Phase 2 on a worker: decode the files of one batch again and write their region.

    Parameters
    ----------
    members : sequence of FileSummary
        The batch's files with the times phase 1 saw (their frames cover whole time chunks
        that no other batch touches).
    keep : numpy.ndarray
        Store indices in the batch's region that already hold a frame, shape ``(k,)`` int64.

    Returns
    -------
    (start, stop, index)
        The region ``[start, stop)`` written and the store indices of the batch's frames
        ``(T,)`` (the client marks them present).
    """
    tc = layout.time_chunk
    index = layout.index_of(np.concatenate([m.times.values for m in members]))  # (T,)
    start, stop = int(index.min()) // tc * tc, (int(index.max()) // tc + 1) * tc

    def frames() -> Iterator[tuple[int, dict[str, np.ndarray], str]]:
        """Decode and check the batch's files one by one (a chunk is written once its
        files are done, while the next files are decoded)."""
        for member in members:
            source = SourceFile(member.expected_time, member.path)
            _, got, data, _ = decode_file(spec, read, source, lo, hi, check_values=False)
            if not got.equals(member.times):
                raise IngestError(f"{member.path}: changed while being ingested (times differ)")
            for i, slot in enumerate(layout.index_of(got).tolist()):
                views = {name: values[i] for name, values in data.items()}  # (H, W) each
                yield slot, views, member.path

    # values are range-checked on each chunk, in the encoding threads, before it is written
    wr.write_region(path, layout, start, stop, index, frames(), keep, spec.variables)
    return start, stop, index


class _InlineExecutor(cf.Executor):
    """Runs each task at submission, in the calling thread (the ``synchronous`` scheduler)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the caller through the future
            future.set_exception(error)
        return future


@dataclass(frozen=True)
class Runner:
    """An executor, how many tasks to keep in flight on it and how many run at once.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Runs the tasks.
    in_flight : int
        Tasks submitted ahead (bounds the client's pending futures).
    kind : str
        Description for the report (``threads (2)``, ``distributed (2 threads)``).
    workers : int
        Tasks that run at once (worker threads): sizes the tasks (:func:`tasks_for`).
    """

    executor: cf.Executor
    in_flight: int
    kind: str
    workers: int = 1

    def stream(
        self, fn: Callable[..., Any], jobs: Iterable[tuple[Any, ...]]
    ) -> Iterator[tuple[int, cf.Future[Any]]]:
        """Run ``fn(*job)`` for each job; yield ``(job number, done future)`` as they finish.

        At most :attr:`in_flight` tasks are pending. After a task fails no new task is
        submitted and the ones in flight are waited for (and yielded) before the failed ones
        are yielded last: when the caller re-raises, no task is still writing.
        """
        pending: dict[cf.Future[Any], int] = {}
        failed: list[tuple[int, cf.Future[Any]]] = []
        jobs_left = enumerate(jobs)
        exhausted = False
        while True:
            while not exhausted and not failed and len(pending) < self.in_flight:
                try:
                    number, job = next(jobs_left)
                except StopIteration:
                    exhausted = True
                    break
                pending[self.executor.submit(fn, *job)] = number
            if not pending:
                break
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in sorted(done, key=pending.__getitem__):
                number = pending.pop(future)
                if future.exception() is not None:
                    failed.append((number, future))
                else:
                    yield number, future
        yield from sorted(failed, key=lambda item: item[0])


@contextlib.contextmanager
def task_executor(scheduler: Any = None) -> Iterator[Runner]:
    """The executor of an ingest's tasks for ``scheduler``.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None``/``"threads"`` (a local thread pool), ``"synchronous"`` (inline), a
        ``dask.distributed`` scheduler address (``tcp://host:8786``) or a ``Client``.

    Raises
    ------
    ValueError
        An unknown scheduler name.
    """
    if scheduler is None or scheduler == "threads":
        threads = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
        with cf.ThreadPoolExecutor(threads, thread_name_prefix="ingest") as pool:
            yield Runner(pool, IN_FLIGHT_PER_WORKER * threads, f"threads ({threads})", threads)
        return
    if scheduler in LOCAL_SCHEDULERS:
        yield Runner(_InlineExecutor(), 1, "synchronous", 1)
        return
    if isinstance(scheduler, str):
        if "://" not in scheduler:
            raise ValueError(
                f"unknown scheduler {scheduler!r}; use 'threads', 'synchronous' or a "
                "dask.distributed address such as 'tcp://127.0.0.1:8786'"
            )
        from distributed import Client

        try:
            client = Client(scheduler, set_as_default=False)
        except OSError as error:  # distributed raises OSError("Timed out trying to connect ...")
            raise ConnectionError(
                f"cannot reach the Dask scheduler {scheduler} ({error}); start it or pass "
                "another --scheduler (default: local threads)"
            ) from error
        with client:
            yield _client_runner(client)
        return
    if not hasattr(scheduler, "get_executor"):
        raise ValueError(f"unknown scheduler {scheduler!r}: not a name, address or Client")
    yield _client_runner(scheduler)


def _client_runner(client: Any) -> Runner:
    threads = max(1, sum(client.nthreads().values()))
    executor = client.get_executor(pure=False)  # a retried batch must run again
    kind = f"distributed ({threads} threads)"
    return Runner(executor, IN_FLIGHT_PER_WORKER * threads, kind, threads)
