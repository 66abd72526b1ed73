"""Generated tables in the docs: the text between a pair of HTML-comment markers, read and replaced.

The benchmark and user-data scripts write their tables with :func:`write_between`; tests/unit/test_docs.py reads them
back with :func:`read_between` and compares them with the committed results."""

from __future__ import annotations

from pathlib import Path


def _parts(page: str, start: str, end: str, path: Path) -> tuple[str, str, str]:
    if start not in page or end not in page.split(start, 1)[1]:
        raise ValueError(f"{path}: the markers {start} ... {end} are missing; add them where the table goes")
    head, rest = page.split(start, 1)
    inside, tail = rest.split(end, 1)
    return head, inside, tail


def read_between(path: Path, start: str, end: str) -> str:
    """What stands between the markers, stripped."""
    return _parts(path.read_text(encoding="utf-8"), start, end, path)[1].strip()


def write_between(path: Path, start: str, end: str, text: str) -> None:
    """Replace what stands between the markers of ``path`` by ``text``."""
    head, _, tail = _parts(path.read_text(encoding="utf-8"), start, end, path)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")
