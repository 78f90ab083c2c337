"""A stand-in for the reading process (app/uploads/tabular/child.py) that dies the way a
native reader can, as ORDERLENS_TEST_DEATH says: `abort`, `segfault`, `hang`, `spin`
(CPU), `allocate` (Python out of its address space), or `half` (sends the header and
some rows, then aborts). tests/uploads/test_tabular.py puts it in place of the child."""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time

from app.uploads.tabular import TabularLimits
from app.uploads.tabular.child import DATA, META, limit_self, send


def main() -> None:
    request = json.loads(sys.argv[1])
    limit_self(TabularLimits(**request["limits"]))
    how = os.environ["ORDERLENS_TEST_DEATH"]
    out = sys.stdout.buffer
    if how == "abort":
        os.abort()
    elif how == "segfault":
        ctypes.string_at(0)
    elif how == "hang":
        time.sleep(3600)
    elif how == "spin":
        while True:
            pass
    elif how == "allocate":
        hoard = [bytearray(64 << 20) for _ in range(1 << 20)]
        print(len(hoard))
    elif how == "half":
        send(out, META, json.dumps({"line_offset": 0, "warnings": []}).encode())
        send(out, DATA, b"id,name,category,price\n")
        send(out, DATA, b"".join(b"%d,Name,Things,1.00\n" % i for i in range(1, 1001)))
        out.flush()
        os.abort()


if __name__ == "__main__":
    main()
