"""Figures that tests report (counts, seconds), collected across xdist workers and printed at the end.

A test calls ``record_figure(section, label, value, unit)``; each process appends JSON lines to its
own file in the directory named by ``NOVA_CELLS_FIGURES_DIR``, which the controlling pytest process
creates in ``pytest_configure`` before any worker starts (workers inherit it). The controller's
``pytest_terminal_summary`` prints them grouped by section and writes the same table to
``$NOVA_CELLS_HOME/logs/figures.txt`` so a closing note can quote it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FIGURES_DIR_VARIABLE = "NOVA_CELLS_FIGURES_DIR"


def ensure_figures_dir() -> Path:
    """The figures directory of this pytest run, created by the first (controlling) process."""
    existing = os.environ.get(FIGURES_DIR_VARIABLE)
    if existing:
        return Path(existing)
    directory = Path(tempfile.mkdtemp(prefix="nova-cells-figures-"))
    os.environ[FIGURES_DIR_VARIABLE] = str(directory)
    return directory


def record_figure(section: str, label: str, value: Any, unit: str = "") -> None:
    """Record one figure; the same (section, label) recorded twice keeps the last value."""
    directory = ensure_figures_dir()
    line = json.dumps({"section": section, "label": label, "value": value, "unit": unit})
    with (directory / f"{os.getpid()}.jsonl").open("a", encoding="utf-8") as stream:
        stream.write(line + "\n")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def figures_table() -> list[str]:
    """The recorded figures as lines of text, grouped by section in first-recorded order."""
    directory = os.environ.get(FIGURES_DIR_VARIABLE)
    if not directory or not Path(directory).is_dir():
        return []
    sections: dict[str, dict[str, tuple[Any, str]]] = {}
    for path in sorted(Path(directory).glob("*.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(raw)
            sections.setdefault(entry["section"], {})[entry["label"]] = (entry["value"], entry["unit"])
    lines: list[str] = []
    for section in sorted(sections):
        lines.append(f"[{section}]")
        for label, (value, unit) in sections[section].items():
            lines.append(f"  {label:<72} {_format_value(value):>10} {unit}".rstrip())
    return lines


def remove_figures_dir() -> None:
    directory = os.environ.get(FIGURES_DIR_VARIABLE)
    if directory and Path(directory).is_dir():
        for path in Path(directory).glob("*.jsonl"):
            path.unlink()
        Path(directory).rmdir()
