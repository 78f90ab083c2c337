"""Join two pytest junit files on test id and compare the time of the tests both passed.

    python benchmarks/suite_time/compare_junit.py OLD.xml NEW.xml

Prints the totals, the classes whose time changed most, and the tests only one side has.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def load(path: str) -> dict[str, tuple[float, bool]]:
    """Test id → (seconds, skipped)."""
    cases = ET.parse(path).getroot().iter("testcase")  # noqa: S314 (our own pytest output)
    return {
        f"{c.get('classname', '')}::{c.get('name', '')}": (
            float(c.get("time", 0)),
            c.find("skipped") is not None,
        )
        for c in cases
    }


def main(old_path: str, new_path: str) -> None:
    old, new = load(old_path), load(new_path)
    both = [k for k in old if k in new and not old[k][1] and not new[k][1]]
    print(f"passed in both: {len(both)} tests")
    print(f"  old {sum(old[k][0] for k in both):.1f} s, new {sum(new[k][0] for k in both):.1f} s")
    by_class: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for k in both:
        by_class[k.split("::")[0]][0] += old[k][0]
        by_class[k.split("::")[0]][1] += new[k][0]
    changed = sorted(by_class.items(), key=lambda kv: abs(kv[1][1] - kv[1][0]), reverse=True)
    for name, (was, now) in changed[:15]:
        print(f"  {now - was:+7.1f} s  old {was:6.1f}  new {now:6.1f}  {name}")
    added = [k for k in new if k not in old]
    print(f"only new: {len(added)} tests, {sum(new[k][0] for k in added):.1f} s")
    gone = [k for k in old if k not in new]
    print(f"only old: {len(gone)} tests")
    for k in gone:
        print(f"  {k}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
