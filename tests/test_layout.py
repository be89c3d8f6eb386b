"""pytest imports test modules by basename (rootdir import mode): two test files with the same name in
different folders stop the whole run at collection, which only a full run shows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_test_module_names_are_unique() -> None:
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
