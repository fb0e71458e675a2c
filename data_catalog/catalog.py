"""The declarative catalog: load and validate ``catalog.yaml``, list sources, find their files.

The catalog file is YAML::

    version: 1
    sources:
      mch-radar:            # the key is the source name
        kind: radar
        reader: mch-gif
        path: ${samples}/pysteps-data/radar/mch/%Y%m%d/AQC%y%j%H%M?_00005.801.gif
        time_step: 5min
        variables: [...]    # data_catalog.spec.VariableSpec fields
        grid: {...}         # data_catalog.spec.GridSpec fields
        chunks: {time: 12, y: 320, x: 355}

Path patterns
-------------
``${samples}`` expands to the shipped sample folder ``data_catalog/samples`` or to
``$NOWCAST_SAMPLES_DIR`` (or the ``samples=`` argument); a relative pattern is taken relative to
``${samples}`` too, and absolute paths and fsspec URLs (``s3://``, ``gs://``, ``https://``) are
used as they are. strftime codes ``%Y %y %m %d %j %H %M %S`` (and ``%%``) mark where a file's
time is written in its name; ``?`` and ``*`` are glob wildcards. A file's time is parsed from
the codes in its *name*; codes in folder names only narrow the search. :func:`list_files` globs
the pattern through fsspec (any filesystem that can list), parses each file's time, sorts by
time and refuses two files with the same time. :func:`format_path` builds the path of
one time for patterns without wildcards (for servers that cannot list, such as plain HTTPS).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import yaml

from data_catalog.paths import is_url
from data_catalog.spec import SourceSpec

log = logging.getLogger(__name__)

SAMPLES_ENV = "NOWCAST_SAMPLES_DIR"
SAMPLES_DIR = Path(__file__).with_name("samples")
DEFAULT_CATALOG = Path(__file__).with_name("catalog.yaml")
CATALOG_VERSION = 1

# strftime code -> (regex group, number of characters). Only fixed-width codes are allowed so
# the same pattern gives both a glob (``?`` per character) and a parsing regex.
_TIME_CODES: dict[str, tuple[str, int]] = {
    "Y": (r"(?P<Y>\d{4})", 4),
    "y": (r"(?P<y>\d{2})", 2),
    "m": (r"(?P<m>\d{2})", 2),
    "d": (r"(?P<d>\d{2})", 2),
    "j": (r"(?P<j>\d{3})", 3),
    "H": (r"(?P<H>\d{2})", 2),
    "M": (r"(?P<M>\d{2})", 2),
    "S": (r"(?P<S>\d{2})", 2),
}


@dataclass(frozen=True)
class SourceFile:
    """One file of a source: its time (from the name, ``None`` if the name has none) and path."""

    time: pd.Timestamp | None
    path: str


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: source specs keyed by name.

    Parameters
    ----------
    sources : Mapping[str, SourceSpec]
        The sources, in file order.
    path : str
        Where the catalog was read from ('' when built in memory).
    """

    sources: Mapping[str, SourceSpec]
    path: str = ""

    def get(self, name: str) -> SourceSpec:
        """The spec of source ``name``; ``ValueError`` listing the valid names otherwise."""
        try:
            return self.sources[name]
        except KeyError:
            raise ValueError(
                f"unknown source {name!r} in catalog {self.path or '<memory>'}; "
                f"valid names: {sorted(self.sources)}"
            ) from None

    def names(self) -> list[str]:
        """Source names in catalog order."""
        return list(self.sources)

    def __iter__(self) -> Iterator[SourceSpec]:
        return iter(self.sources.values())

    def __len__(self) -> int:
        return len(self.sources)


def parse_catalog(data: Any, origin: str = "<memory>") -> Catalog:
    """Validate a parsed catalog mapping (``{"version": 1, "sources": {name: entry}}``).

    Raises
    ------
    ValueError
        Naming ``origin``, the source and the field that is wrong, with the allowed values.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{origin}: a catalog must be a mapping with 'version' and 'sources'")
    unknown = sorted(set(data) - {"version", "sources"})
    if unknown:
        raise ValueError(f"{origin}: unknown top-level key(s) {unknown}; allowed: version, sources")
    if data.get("version", CATALOG_VERSION) != CATALOG_VERSION:
        raise ValueError(
            f"{origin}: field 'version': got {data.get('version')!r}; allowed: {CATALOG_VERSION}"
        )
    entries = data.get("sources")
    if not isinstance(entries, Mapping) or not entries:
        raise ValueError(f"{origin}: field 'sources': expected a non-empty mapping name -> entry")
    sources: dict[str, SourceSpec] = {}
    for name, entry in entries.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"{origin}: source {name!r}: expected a mapping of fields")
        try:
            sources[str(name)] = SourceSpec.from_dict(entry, name=str(name))
        except ValueError as error:
            raise ValueError(f"{origin}: {error}") from None
    return Catalog(sources=sources, path=origin)


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Read and validate a catalog YAML file (default: the shipped ``catalog.yaml``).

    Parameters
    ----------
    path : str or PathLike, optional
        Local path or fsspec URL of the YAML file.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the YAML does not parse or an entry is invalid (the message names the field).
    """
    origin = os.fspath(path) if path is not None else str(DEFAULT_CATALOG)
    try:
        with fsspec.open(origin, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"catalog file not found: {origin}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{origin}: not valid YAML: {error}") from None
    return parse_catalog(data, origin)


def list_sources(catalog: Catalog | None = None) -> list[str]:
    """Names of the sources of ``catalog`` (default: the shipped catalog)."""
    return (catalog or load_catalog()).names()


def get_source(name: str, catalog: Catalog | None = None) -> SourceSpec:
    """The spec of source ``name`` from ``catalog`` (default: the shipped catalog)."""
    return (catalog or load_catalog()).get(name)


def samples_dir(samples: str | os.PathLike[str] | None = None) -> str:
    """What ``${samples}`` expands to: ``samples``, else ``$NOWCAST_SAMPLES_DIR``, else shipped."""
    chosen = samples if samples is not None else os.environ.get(SAMPLES_ENV) or SAMPLES_DIR
    text = os.fspath(chosen)
    return text.rstrip("/") if is_url(text) else str(Path(text).expanduser().resolve())


def expand_path(pattern: str, samples: str | os.PathLike[str] | None = None) -> str:
    """Expand ``${samples}`` in ``pattern``; relative patterns are relative to ``${samples}``."""
    root = samples_dir(samples)
    text = pattern.replace("${samples}", root)
    if is_url(text) or os.path.isabs(text) or text.startswith("file://"):
        return text
    return f"{root}/{text}" if is_url(root) else str(Path(root, text))


def _translate(pattern: str) -> tuple[str, str]:
    """``(glob, regex)`` for a path pattern with strftime codes and ``?``/``*`` wildcards.

    Only the codes of the last path component (the file name) become regex groups: folder
    names often carry the date of an *event* (``mch/20160711/`` holds 2016-07-12 00:00), so
    codes in folders only narrow the glob.
    """
    glob_parts: list[str] = []
    regex_parts: list[str] = []
    name_start = pattern.rfind("/") + 1
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%" and i < name_start and pattern[i + 1 : i + 2] in _TIME_CODES:
            width = _TIME_CODES[pattern[i + 1]][1]
            glob_parts.append("?" * width)
            regex_parts.append(rf"\d{{{width}}}")
            i += 2
            continue
        if char == "%":
            code = pattern[i + 1 : i + 2]
            if code == "%":
                glob_parts.append("%")
                regex_parts.append("%")
            elif code in _TIME_CODES:
                group, width = _TIME_CODES[code]
                glob_parts.append("?" * width)
                # Later repeats of a code must match the same digits as the first one.
                regex_parts.append(
                    f"(?P={code})" if f"(?P<{code}>" in "".join(regex_parts) else group
                )
            else:
                raise ValueError(
                    f"path pattern {pattern!r}: unsupported time code %{code}; "
                    f"allowed: {', '.join('%' + c for c in _TIME_CODES)}, %%"
                )
            i += 2
            continue
        if char == "?":
            regex_parts.append("[^/]")
        elif char == "*":
            regex_parts.append("[^/]*")
        else:
            regex_parts.append(re.escape(char))
        glob_parts.append(char)
        i += 1
    return "".join(glob_parts), "".join(regex_parts)


def has_time_codes(pattern: str) -> bool:
    """True when the file-name part of ``pattern`` holds a strftime code (a time per file)."""
    name = pattern.rsplit("/", 1)[-1]
    return bool(re.search(r"%[YymdjHMS]", name.replace("%%", "")))


def parse_time(pattern: str, path: str) -> pd.Timestamp | None:
    """The time written in the name of ``path`` by ``pattern`` (``None`` if it has no codes).

    Raises
    ------
    ValueError
        When ``path`` does not match ``pattern`` or its digits are not a valid date.
    """
    if not has_time_codes(pattern):
        return None
    # Only the file name carries the time, so match names (the root may differ).
    _, regex = _translate(pattern.rsplit("/", 1)[-1])
    match = re.fullmatch(regex, _strip(path).rsplit("/", 1)[-1])
    if match is None:
        raise ValueError(f"file {path!r} does not match the path pattern {pattern!r}")
    parts = match.groupdict()
    if parts.get("Y"):
        year: int | None = int(parts["Y"])
    elif parts.get("y"):  # POSIX strptime: 69-99 -> 1969-1999, 00-68 -> 2000-2068
        year = int(parts["y"]) + (1900 if int(parts["y"]) >= 69 else 2000)
    else:
        year = None
    if year is None:
        raise ValueError(f"path pattern {pattern!r} has no year code (%Y or %y)")
    try:
        if parts.get("j"):
            day = pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=int(parts["j"]) - 1)
            if day.year != year:
                raise ValueError(f"day of year {parts['j']} is out of range")
            if parts.get("m") and (int(parts["m"]), int(parts["d"] or day.day)) != (
                day.month,
                day.day,
            ):
                raise ValueError("day of year disagrees with month/day")
            month, mday = day.month, day.day
        else:
            month, mday = int(parts.get("m") or 1), int(parts.get("d") or 1)
        return pd.Timestamp(
            year=year,
            month=month,
            day=mday,
            hour=int(parts.get("H") or 0),
            minute=int(parts.get("M") or 0),
            second=int(parts.get("S") or 0),
        )
    except ValueError as error:
        raise ValueError(f"file {path!r}: no valid time in its name ({error})") from None


def _strip(path: str) -> str:
    """``path`` without its protocol (``s3://b/k`` -> ``b/k``; local paths unchanged)."""
    return path.split("://", 1)[1] if "://" in path else path


def format_path(
    spec: SourceSpec, time: pd.Timestamp, samples: str | os.PathLike[str] | None = None
) -> str:
    """The path of the file of ``spec`` at ``time`` (pattern without wildcards only)."""
    pattern = expand_path(spec.path, samples)
    if "?" in pattern or "*" in pattern:
        raise ValueError(
            f"source {spec.name!r}: path pattern {spec.path!r} has wildcards; "
            "list the files with list_files() instead"
        )
    return pd.Timestamp(time).strftime(pattern)


def list_files(
    spec: SourceSpec,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    samples: str | os.PathLike[str] | None = None,
) -> list[SourceFile]:
    """Files of ``spec`` (globbed through fsspec), sorted by time, within ``[start, end]``.

    Parameters
    ----------
    spec : SourceSpec
        The source.
    start, end : str or Timestamp, optional
        Inclusive time window on the times parsed from file names (ignored for files whose
        names carry no time: those are returned in name order and timed by their content).
    samples : str or PathLike, optional
        Root for ``${samples}`` (default ``$NOWCAST_SAMPLES_DIR`` or the shipped samples).

    Raises
    ------
    FileNotFoundError
        When no file matches the pattern.
    ValueError
        When two files carry the same time.
    """
    pattern = expand_path(spec.path, samples)
    glob, _ = _translate(pattern)
    fs, _ = fsspec.core.url_to_fs(glob)
    found = (
        sorted(fs.glob(glob))
        if any(c in glob for c in "?*[")
        else ([fs._strip_protocol(glob)] if fs.exists(glob) else [])
    )
    if not found:
        raise FileNotFoundError(f"source {spec.name!r}: no file matches {pattern!r}")
    url = is_url(pattern)
    files: list[SourceFile] = []
    for raw in found:
        path = fs.unstrip_protocol(raw) if url else raw
        files.append(SourceFile(parse_time(pattern, path), path))
    if has_time_codes(pattern):
        files.sort(key=lambda f: f.time)  # type: ignore[arg-type, return-value]
        for before, after in zip(files, files[1:], strict=False):
            if before.time == after.time:
                raise ValueError(
                    f"source {spec.name!r}: two files for {before.time}: "
                    f"{before.path!r} and {after.path!r}"
                )
        lo = pd.Timestamp(start) if start is not None else None
        hi = pd.Timestamp(end) if end is not None else None
        files = [
            f
            for f in files
            if (lo is None or f.time >= lo) and (hi is None or f.time <= hi)  # type: ignore[operator]
        ]
    log.debug("source %s: %d files match %s", spec.name, len(files), pattern)
    return files
