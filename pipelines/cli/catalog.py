"""``nowcast catalog list | show NAME | validate FILE | check NAME``: inspect the data catalog.

Examples::

    nowcast catalog list
    nowcast catalog show mch-radar --files
    nowcast catalog validate my_catalog.yaml --files
    nowcast catalog check mch-radar --data-dir data     # the ingested store follows its entry
"""

from __future__ import annotations

import argparse

import yaml

from pipelines.cli import COMMANDS
from pipelines.cli._common import add_data_dir


def _catalog(path: str | None):  # -> data_catalog.catalog.Catalog
    from data_catalog.catalog import load_catalog
    from pipelines.readers import READERS, check_reader_options

    catalog = load_catalog(path)
    for spec in catalog:
        if spec.reader not in READERS:
            raise ValueError(
                f"{catalog.path}: source {spec.name!r}: field 'reader': got {spec.reader!r}; "
                f"allowed: {', '.join(READERS.names())}"
            )
        try:
            check_reader_options(spec)
        except ValueError as error:
            raise ValueError(f"{catalog.path}: {error}") from None
    return catalog


def _list(args: argparse.Namespace) -> int:
    catalog = _catalog(args.catalog)
    print(f"{'name':<16} {'kind':<11} {'reader':<13} {'step':<6} {'grid (H x W)':<13} variables")
    for spec in catalog:
        shape = f"{spec.grid.shape[0]} x {spec.grid.shape[1]}"
        variables = ", ".join(f"{v.name} [{v.units}]" for v in spec.variables)
        print(
            f"{spec.name:<16} {spec.kind:<11} {spec.reader:<13} {spec.time_step:<6} "
            f"{shape:<13} {variables}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from data_catalog.catalog import expand_path, list_files

    spec = _catalog(args.catalog).get(args.name)
    print(yaml.safe_dump({spec.name: spec.to_dict()}, sort_keys=False, width=100).rstrip())
    print(f"# path expands to: {expand_path(spec.path, args.samples)}")
    if args.files:
        files = list_files(spec, samples=args.samples)
        timed = [f.time for f in files if f.time is not None]
        span = f", {timed[0]} .. {timed[-1]}" if timed else ""
        print(f"# {len(files)} files{span}")
        for f in files:
            print(f"#   {f.time if f.time is not None else '-'}  {f.path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from data_catalog.catalog import list_files

    catalog = _catalog(args.file)
    for spec in catalog:
        line = f"{spec.name}: ok"
        if args.files:
            line += f", {len(list_files(spec, samples=args.samples))} files"
        print(line)
    print(f"{args.file}: {len(catalog)} sources valid")
    return 0


def _check(args: argparse.Namespace) -> int:
    import xarray as xr

    from data_catalog.paths import DataDir
    from data_catalog.validate import validate_dataset

    spec = _catalog(args.catalog).get(args.name)
    store = DataDir.resolve(args.data_dir).store(spec.name)
    try:
        ds = xr.open_zarr(store, consolidated=None)
    except (FileNotFoundError, KeyError) as error:
        raise FileNotFoundError(f"no store for {spec.name!r} at {store} ({error})") from None
    with ds:
        validate_dataset(ds, spec, regular_time=True, where=store)
        times = ds.time.values
        print(f"{store}: valid against {spec.name!r}")
        print(f"  {ds.sizes['time']} time steps, {times[0]} .. {times[-1]}")
        for var in spec.variables:
            print(f"  {var.name} [{ds[var.name].attrs['units']}] {ds[var.name].shape}")
    return 0


@COMMANDS.register("catalog")
def add_catalog(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``catalog`` subcommand with ``list``, ``show`` and ``validate``."""
    parser = subparsers.add_parser(
        "catalog",
        help="list, show and validate data catalog sources",
        description="Inspect the data catalog (default: the shipped data_catalog/catalog.yaml).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, with_catalog: bool = True) -> None:
        if with_catalog:
            p.add_argument("--catalog", default=None, help="catalog YAML (default: shipped)")
        p.add_argument(
            "--samples",
            default=None,
            help="root for ${samples} (default: $NOWCAST_SAMPLES_DIR or the shipped samples)",
        )

    p_list = actions.add_parser("list", help="one line per source")
    p_list.add_argument("--catalog", default=None, help="catalog YAML (default: shipped)")
    p_list.set_defaults(func=_list)

    p_show = actions.add_parser("show", help="the full entry of one source")
    p_show.add_argument("name", help="source name, e.g. mch-radar")
    p_show.add_argument("--files", action="store_true", help="also list the source's files")
    common(p_show)
    p_show.set_defaults(func=_show)

    p_val = actions.add_parser("validate", help="check a catalog file (fields, readers)")
    p_val.add_argument("file", help="catalog YAML to check")
    p_val.add_argument("--files", action="store_true", help="also check each source has files")
    common(p_val, with_catalog=False)
    p_val.set_defaults(func=_validate)

    p_check = actions.add_parser("check", help="check a source's ingested store against its entry")
    p_check.add_argument("name", help="source name, e.g. mch-radar")
    p_check.add_argument("--catalog", default=None, help="catalog YAML (default: shipped)")
    add_data_dir(p_check)
    p_check.set_defaults(func=_check)
