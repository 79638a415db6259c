"""Where and how eagerly the process runs: llama-server's CPU placement flags.

--cpu-mask / --cpu-range: the process's CPU affinity (set on every thread running, and
on the main thread before the compute pool starts, so its threads inherit it);
--cpu-strict 1 additionally pins each compute thread to its own CPU of that set (the
native pool does it); --prio: the nice value llama.cpp sets (low 5, normal 0, medium
-5, high -10, realtime -20; raising it needs the privilege to, else a warning);
--poll: how long idle compute threads spin before sleeping (the native pool).

--numa, from Linux's NUMA topology (/sys/devices/system/node): `isolate` keeps the
process on the CPUs of the node it started on; `distribute` pins the compute threads
one per CPU, taking the nodes in turn, so they spread evenly over every node; `numactl`
keeps the CPU set numactl (or taskset, or a cgroup) gave the process, which every
thread inherits. All three stay inside --cpu-mask/--cpu-range when given, and do nothing
on a machine with one node (as ggml). Unlike ggml, which lets a distributed thread run
on any CPU of its node, each compute thread here has one CPU (the native pool pins to
single CPUs)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("pyllama.server")

NICE = {-1: 5, 0: 0, 1: -5, 2: -10, 3: -20}
NODES = Path("/sys/devices/system/node")
NODES_ENV = "PYLLAMA_SYSFS_NODES"  # another place to read the topology from (tests fake a two-node machine)


def parse_cpulist(text: str) -> list[int]:
    """The CPUs of a kernel cpulist ("0-3,8,10-11")."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def numa_nodes(root: Path | None = None) -> list[list[int]]:
    """The CPUs of each NUMA node with any, in node order; [] when the kernel says nothing."""
    root = root or Path(os.environ.get(NODES_ENV) or NODES)
    nodes = []
    try:
        entries = sorted((p for p in root.iterdir() if p.name.startswith("node") and p.name[4:].isdigit()),
                         key=lambda p: int(p.name[4:]))
    except OSError:
        return []
    for p in entries:
        try:
            cpus = parse_cpulist((p / "cpulist").read_text())
        except (OSError, ValueError):
            continue
        if cpus:
            nodes.append(cpus)
    return nodes


def current_cpu() -> int | None:
    """The CPU this thread runs on now (/proc/self/stat's 39th field), or None."""
    try:
        stat = Path("/proc/thread-self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def numa_plan(mode: str, nodes: list[list[int]], allowed: set[int], here: int | None) -> tuple[list[int], list[int]]:
    """(the process's CPUs or [] to leave them, the compute threads' CPUs one each or [])
    for --numa `mode` on `nodes`, within the `allowed` CPUs."""
    nodes = [[c for c in n if c in allowed] for n in nodes]
    nodes = [n for n in nodes if n]
    if len(nodes) < 2:  # as ggml: one node is no NUMA machine, nothing to place
        return [], []
    if mode == "isolate":
        home = next((n for n in nodes if here in n), nodes[0] if nodes else [])
        return home, []
    if mode == "distribute" and nodes:
        spread = [n[i] for i in range(max(map(len, nodes))) for n in nodes if i < len(n)]
        return [], spread
    return [], []  # numactl: the inherited set stands


def apply(cfg) -> list[str]:
    """Set the process's affinity and priority; the warnings of what could not be done."""
    warnings = []
    if cfg.cpus is not None:
        allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
        cpus = [c for c in cfg.cpus if not allowed or c in allowed]
        if not cpus:
            warnings.append(f"--cpu-mask/--cpu-range: none of CPUs {cfg.cpus} is available to this process "
                            f"(allowed: {sorted(allowed)}); affinity unchanged")
        else:
            if len(cpus) < len(cfg.cpus):
                warnings.append(f"--cpu-mask/--cpu-range: CPUs {sorted(set(cfg.cpus) - set(cpus))} are not "
                                f"available to this process; using {cpus}")
            try:
                set_affinity(cpus)
            except OSError as e:
                warnings.append(f"failed to set the CPU affinity to {cpus}: {e.strerror or e}")
    if cfg.numa == "isolate":
        home, _ = numa_plan("isolate", numa_nodes(), set(os.sched_getaffinity(0)), current_cpu())
        if home:
            try:
                set_affinity(home)
            except OSError as e:
                warnings.append(f"--numa isolate: failed to set the CPU affinity to {home}: {e.strerror or e}")
    if cfg.prio != 0:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE[cfg.prio])
        except OSError as e:
            warnings.append(f"failed to set process priority {cfg.prio} (nice {NICE[cfg.prio]}): {e.strerror or e}")
    return warnings


def set_affinity(cpus: list[int]) -> None:
    """The CPUs of every thread of the process: those already running (a log writer, the
    loop's helpers) as well as the calling one, whose set the threads started later inherit."""
    os.sched_setaffinity(0, cpus)
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, PermissionError):
            pass  # ended meanwhile


def strict_cpus(cfg) -> list[int]:
    """The CPUs compute threads are pinned to, one each (--cpu-strict 1, --numa distribute),
    or [] for none."""
    if cfg.cpu_strict != 1:
        if cfg.numa == "distribute":
            return numa_plan("distribute", numa_nodes(), set(os.sched_getaffinity(0)), None)[1]
        return []
    if cfg.cpus is not None:
        allowed = set(os.sched_getaffinity(0))
        return [c for c in cfg.cpus if c in allowed] or sorted(allowed)
    return sorted(os.sched_getaffinity(0))
