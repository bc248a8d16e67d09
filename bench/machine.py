"""The machine a benchmark ran on, and the CPU its processes used.

Figures mean little without the machine, so every benchmark prints `describe()`
first. CPU time comes from /proc (utime + stime of every process in a tree, threads
included), which counts what the server really burned whatever its event loop or
worker count; pinning uses `sched_setaffinity` on every thread of a tree, which is
what `taskset -a -p` does. Linux only. Run `python -m bench.machine` to print it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    found = re.search(r"^model name\s*:\s*(.+)$", _read(PROC / "cpuinfo"), re.M)
    return found.group(1).strip() if found else platform.processor() or "unknown CPU"


def memory_gib() -> float:
    """Total memory in GiB from /proc/meminfo."""
    found = re.search(r"^MemTotal:\s+(\d+) kB", _read(PROC / "meminfo"), re.M)
    return int(found.group(1)) / 1024 / 1024 if found else 0.0


def describe() -> list[str]:
    """Lines that describe this machine, for the head of a benchmark's output."""
    cores = os.cpu_count() or 0
    load = _read(PROC / "loadavg").split()[:3]
    lines = [
        f"machine: {platform.platform()} ({platform.machine()})",
        f"python:  {platform.python_implementation()} {platform.python_version()}",
        f"cpu:     {cpu_model()}, {cores} logical cores",
        f"memory:  {memory_gib():.1f} GiB",
    ]
    if load:
        lines.append(f"load:    {' '.join(load)} (1/5/15 min averages at start)")
    if cores <= 2:
        lines.append(
            f"note:    only {cores} cores: server and load generator are pinned to "
            "different cores where the run says so; Redis and PostgreSQL are unpinned."
        )
    return lines


def _stat_fields(pid: int) -> list[str]:
    raw = _read(PROC / str(pid) / "stat")
    if not raw:
        return []
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    return raw[raw.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_split(pids: Iterable[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of these processes, all their threads included."""
    user = system = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:  # utime and stime: fields 14 and 15 of stat, counting pid and comm
            user += int(fields[11])
            system += int(fields[12])
    return user / TICKS, system / TICKS


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    return sum(cpu_split(pids))


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a process and all its descendants."""
    return cpu_seconds(process_tree(root))


def tree_cpu_split(root: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and all its descendants."""
    return cpu_split(process_tree(root))


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, from /proc/stat)."""
    fields = _read(PROC / "stat").split("\n", 1)[0].split()[1:]
    if len(fields) < 8:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def named_processes(*names: str) -> list[int]:
    """Processes whose command name is one of `names` (e.g. redis-server, postgres)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            comm = _read(entry / "comm").strip()
            if comm in names:
                found.append(int(entry.name))
    return found


def pin_tree(root: int, cpus: set[int]) -> None:
    """Pin every thread of a process tree to `cpus` (like `taskset -a -p`)."""
    for pid in process_tree(root):
        for task in (PROC / str(pid) / "task").glob("*"):
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                os.sched_setaffinity(int(task.name), cpus)


def pin_self(cpus: set[int]) -> None:
    """Pin this process (all its threads) to `cpus`."""
    pin_tree(os.getpid(), cpus)


def cpus_of(pid: int) -> str:
    """The CPU list a process may run on, as `0-1` or `1`."""
    return _cpu_list(os.sched_getaffinity(pid))


def _cpu_list(cpus: set[int]) -> str:
    ordered = sorted(cpus)
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 1:
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(map(str, ordered))


def parse_cpus(text: str) -> set[int]:
    """`0`, `0,1` or `0-1` as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def main() -> None:
    for line in describe():
        print(line)
    print(f"this process may run on CPUs {cpus_of(os.getpid())}")


if __name__ == "__main__":
    main()
