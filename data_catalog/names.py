"""Names that become paths: one rule, and the check that a path stays inside its root.

Every name the pipeline turns into a file or folder under the data directory (a source name, a
multi-source label ``a+b``, a name read from checkpoint metadata, a report sub-folder such as
``zero-shot-a+b``) goes through :func:`check_path_name`; :class:`data_catalog.paths.DataDir`
calls it for every name it joins and then :func:`check_inside` on the joined path. So a name
like ``../../etc`` or ``x/../../TARGET`` (a hostile ``metadata["sources"]``, a ``--source``
with slashes) is a ``ValueError`` naming the value, never a write elsewhere.

The rule is the catalog's source-name rule (:func:`data_catalog.vocabulary.check_source_name`:
lower-case kebab-case, ``[a-z0-9][a-z0-9-]*``), applied to each ``+``-separated member.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from data_catalog import vocabulary as voc

MAX_NAME_LENGTH = 200
"""Longest name accepted: file systems allow 255 bytes per component, and the stores add
suffixes such as ``-24leads.zarr``."""


def check_path_name(name: object, what: str = "source name") -> str:
    """Return ``name`` if it is safe as one path component, else raise ``ValueError``.

    Parameters
    ----------
    name : object
        A catalog source name (``mch-radar``) or several joined with ``+``
        (``mch-radar+knmi-radar``); each member must follow the catalog's source-name rule.
    what : str
        What the name is, for the message (``"source name"``, ``"report folder"``...).

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    ValueError
        Naming the value when it is not a string, empty, too long, or a member breaks the rule
        (a ``/``, ``\\``, ``..``, space, upper-case letter, NUL...).
    """
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{what} must have 1 to {MAX_NAME_LENGTH} characters, got {len(name)}: {name[:60]!r}"
        )
    for member in name.split("+"):
        try:
            voc.check_source_name(member)
        except ValueError:
            raise ValueError(
                f"{what} {name!r} is not a safe name: each '+'-separated part must be "
                f"lower-case kebab-case like 'mch-radar' (letters a-z, digits, '-'), got "
                f"{member!r}"
            ) from None
    return name


def check_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> str:
    """Return ``path`` if it lies under ``root`` once ``..`` is collapsed, else raise.

    Symbolic links are not followed: the names joined under ``root`` are checked by
    :func:`check_path_name` (no separators, no ``..``), so a link inside the data directory is
    one its owner made (e.g. a store on another disk).

    Parameters
    ----------
    root : str or PathLike
        The data directory: a local path or an fsspec URL (``s3://bucket/prefix``).
    path : str or PathLike
        A path built under it.

    Raises
    ------
    ValueError
        Naming both when ``path`` resolves outside ``root``.
    """
    root_text, path_text = os.fspath(root), os.fspath(path)
    if "://" in root_text and not root_text.startswith("file://"):
        base = root_text.rstrip("/")
        inside = path_text.startswith(base + "/") and ".." not in path_text[len(base) :].split("/")
        normal = posixpath.normpath(path_text.split("://", 1)[1])
        inside = inside and normal.startswith(posixpath.normpath(base.split("://", 1)[1]) + "/")
    else:  # '..' collapsed, links kept: a store the user links to another disk stays usable
        inside = Path(os.path.abspath(path_text)).is_relative_to(os.path.abspath(root_text))
    if not inside:
        raise ValueError(f"{path_text!r} is outside the data directory {root_text!r}")
    return path_text


__all__ = ["MAX_NAME_LENGTH", "check_inside", "check_path_name"]
