"""data_catalog: what data exists (vocabulary, source specs, the catalog file, data directory).

Imports no torch and no pipelines code; readers live in :mod:`pipelines.readers`.
"""

from data_catalog.catalog import (
    Catalog,
    SourceFile,
    expand_path,
    format_path,
    get_source,
    list_files,
    list_sources,
    load_catalog,
    parse_time,
    samples_dir,
)
from data_catalog.reader_options import ReaderOptions
from data_catalog.spec import GridSpec, NormalisationHint, SourceSpec, VariableSpec

__all__ = [
    "Catalog",
    "GridSpec",
    "NormalisationHint",
    "ReaderOptions",
    "SourceFile",
    "SourceSpec",
    "VariableSpec",
    "expand_path",
    "format_path",
    "get_source",
    "list_files",
    "list_sources",
    "load_catalog",
    "parse_time",
    "samples_dir",
]
