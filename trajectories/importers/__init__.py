"""Importers of external trajectories (`harness import FORMAT PATH --out RUN_DIR`).

Each importer reads one file format and writes a real lineage that
`verify_lineage`, `harness replay`, `report` and `analyze` accept: a baseline
commit holding a README and the imported file, one trial commit per row (each
keeping its parent's tree: imported trials carry no code), a proposed and an
outcome record per row, and `best` on the source's best kept row. The source's
own status is kept as `Outcome.original_label`; rows that were malformed are
imported as far as they could be recovered and listed, with their line
numbers, in `RunInfo.imported.problems`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .auto_research_recipes import import_auto_research_recipes
from .autoresearch import import_autoresearch
from .common import (
    ImportFormatError,
    ImportResult,
    TrajectoryImportError,
    source_fields,
)

IMPORTERS: dict[str, Callable[[Path, Path], ImportResult]] = {
    "auto-research-recipes": import_auto_research_recipes,
    "autoresearch": import_autoresearch,
}
"""Format name -> importer(path, out)."""

FORMATS = tuple(IMPORTERS)


def import_run(format: str, path: Path, out: Path) -> ImportResult:
    """Import `path` (a file, or a folder holding `results.tsv`) of `format` into
    a new lineage at `out` (missing or empty).

    Raises `TrajectoryImportError` (an unknown format, `out` in use, an
    unreadable file) or its subclass `ImportFormatError` (a file that is not
    this format at all; the message names the line). A file that is merely
    dirty imports, with its problems listed in the result and the run info."""
    importer = IMPORTERS.get(format)
    if importer is None:
        raise TrajectoryImportError(f"unknown import format {format!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise TrajectoryImportError(f"{path} does not exist")
    return importer(path, Path(out))


__all__ = [
    "FORMATS",
    "IMPORTERS",
    "ImportFormatError",
    "ImportResult",
    "TrajectoryImportError",
    "import_run",
    "source_fields",
]
