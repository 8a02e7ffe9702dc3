"""A local cluster's service logs (``data_dir/logs/<service>.log``, one JSON object a line):
which files there are, the lines of one transfer, and following them as they grow."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gongji.cluster.local import LOG_DIR, ClusterState


def log_files(data_dir: Path, state: ClusterState | None) -> dict[str, Path]:
    """Service name -> its log file: the running cluster's services, else the logs a
    cluster left in ``data_dir`` (they outlive ``cluster down``)."""
    if state is not None:
        return {service.name: Path(service.log) for service in state.services}
    return {path.stem: path for path in sorted((data_dir / LOG_DIR).glob("*.log"))}


def host_of(state: ClusterState | None, name: str) -> str | None:
    """The process whose log holds a hosted region's lines (``region-420100`` or
    ``420100`` in a cluster hosted by province: ``province-420000``), or None."""
    if state is None:
        return None
    code = name.removeprefix("region-")
    return next((s.name for s in state.services if code in s.codes), None)


def _fields(line: str) -> dict[str, object] | None:
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def matches(line: str, transfer_id: str | None) -> bool:
    """Whether a log line belongs in the output: every line, or the JSON events whose
    ``transfer_id`` is the one asked for."""
    if transfer_id is None:
        return True
    fields = _fields(line)
    return fields is not None and fields.get("transfer_id") == transfer_id


@dataclass(slots=True)
class _Tail:
    """Where reading one file got to; a line is handed out only once it is complete."""

    path: Path
    offset: int = 0
    partial: str = ""

    def new_lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # truncated or replaced: start again
            self.offset, self.partial = 0, ""
        if size == self.offset:
            return []
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        lines = (self.partial + data.decode("utf-8", errors="replace")).split("\n")
        self.partial = lines.pop()
        return lines


def _in_time_order(tails: list[_Tail], transfer_id: str | None, *, complete: bool) -> list[str]:
    """The matching new lines of every file, in time order across files (by each event's
    ``timestamp``; a line without one keeps the time of the line before it). With
    ``complete``, a last line without its newline counts too."""
    keyed: list[tuple[str, int, int, str]] = []
    for index, tail in enumerate(tails):
        lines = tail.new_lines()
        if complete and tail.partial:
            lines.append(tail.partial)
        last = ""
        for number, line in enumerate(lines):
            fields = _fields(line)
            stamp = fields.get("timestamp") if fields else None
            last = stamp if isinstance(stamp, str) else last
            if matches(line, transfer_id):
                keyed.append((last, index, number, line))
    if len(tails) > 1:
        keyed.sort()
    return [line for *_, line in keyed]


def read_logs(files: Mapping[str, Path], transfer_id: str | None) -> list[str]:
    """The matching lines of the files, in time order across them."""
    return _in_time_order([_Tail(path) for path in files.values()], transfer_id, complete=True)


def follow_logs(
    files: Mapping[str, Path],
    transfer_id: str | None,
    write: Callable[[str], None],
    *,
    poll_s: float = 0.2,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Write the matching lines there are, then each new one once it is complete, until
    ``until()`` (or KeyboardInterrupt)."""
    tails = [_Tail(path) for path in files.values()]
    for line in _in_time_order(tails, transfer_id, complete=False):
        write(line)
    while not until():
        for tail in tails:
            for line in tail.new_lines():
                if matches(line, transfer_id):
                    write(line)
        time.sleep(poll_s)
