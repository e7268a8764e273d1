"""Sections of ``benchmarks/results.md`` that one benchmark script owns, between two markers.

``run.py`` rewrites the file; ``ledger_scale.py`` and ``parallel_projects.py`` each write only
their own section, and ``run.py`` keeps every such section when it rewrites the rest.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


class Section:
    """The part of results.md between ``<!-- NAME: written by benchmarks/SCRIPT -->`` and
    ``<!-- /NAME -->``."""

    def __init__(self, name: str, script: str) -> None:
        self.start = f"<!-- {name}: written by benchmarks/{script} -->"
        self.end = f"<!-- /{name} -->"

    def kept(self) -> str:
        """The section as it stands ("" when there is none)."""
        text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
        if self.start not in text or self.end not in text:
            return ""
        return self.start + text.split(self.start, 1)[1].split(self.end, 1)[0] + self.end

    def write(self, lines: list[str]) -> None:
        """Replace (or append) the section, leaving the rest of results.md alone."""
        text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
        section = "\n".join([self.start, *lines, self.end])
        if self.start in text and self.end in text:
            head, rest = text.split(self.start, 1)
            text = head + section + rest.split(self.end, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        RESULTS.write_text(text, encoding="utf-8")


PARALLEL_PROJECTS = Section("parallel-projects", "parallel_projects.py")
LEDGER_SCALE = Section("ledger-scale", "ledger_scale.py")
OWNED = (PARALLEL_PROJECTS, LEDGER_SCALE)
