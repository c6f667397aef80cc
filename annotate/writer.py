"""The resumable, append-only JSONL writer.

One JSON object per line, each written with a single `write` and made durable with
`fsync` before the next. A run killed at any moment leaves at most one torn last line;
opening the file again cuts that line off (its image is simply annotated again), so a
killed-and-rerun job ends with every image exactly once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def repair_tail(path: Path) -> int:
    """Cut a torn (unterminated or unparsable) last line off `path`; returns bytes removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        data = f.read()
        if not data:
            return 0
        keep = len(data)
        if not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1  # 0 when the only line is torn
        else:
            last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
            try:
                json.loads(data[last_start:])
            except ValueError:
                keep = last_start
        if keep < len(data):
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return len(data) - keep


class JsonlWriter:
    """`with JsonlWriter(path) as w: w.append(record)`; `w.done_ids` holds ids already written."""

    def __init__(self, path: Path, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = repair_tail(self.path)
        self.done_ids: set[str] = set()
        if self.path.exists():
            from artgen.data.captions import read_records

            self.done_ids = {str(r["id"]) for r in read_records(self.path) if "id" in r}
        self._f = open(self.path, "ab", buffering=0)  # one write(2) per record

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode("utf-8")
        self._f.write(line)
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        if "id" in record:
            self.done_ids.add(str(record["id"]))

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
