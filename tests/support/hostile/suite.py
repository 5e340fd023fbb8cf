"""The hostile-input suite: every case, in a stable order."""

from __future__ import annotations

from tests.support.hostile.case import Case
from tests.support.hostile.exotic import EXOTIC
from tests.support.hostile.malformed import MALFORMED

CASES: list[Case] = [*MALFORMED, *EXOTIC]
"""The hostile-input suite: every kind appears once, under a stable name."""

CASE_IDS = [case.name for case in CASES]


def by_name(name: str) -> Case:
    return next(case for case in CASES if case.name == name)
