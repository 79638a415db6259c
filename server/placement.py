"""Where and how eagerly the process runs: llama-server's CPU placement flags.

--cpu-mask / --cpu-range: the process's CPU affinity (set on the main thread before
any other thread starts, so every thread, the compute pool's included, inherits it);
--cpu-strict 1 additionally pins each compute thread to its own CPU of that set (the
native pool does it); --prio: the nice value llama.cpp sets (low 5, normal 0, medium
-5, high -10, realtime -20; raising it needs the privilege to, else a warning);
--poll: how long idle compute threads spin before sleeping (the native pool)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("pyllama.server")

NICE = {-1: 5, 0: 0, 1: -5, 2: -10, 3: -20}


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
                os.sched_setaffinity(0, cpus)
            except OSError as e:
                warnings.append(f"failed to set the CPU affinity to {cpus}: {e.strerror or e}")
    if cfg.prio != 0:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, NICE[cfg.prio])
        except OSError as e:
            warnings.append(f"failed to set process priority {cfg.prio} (nice {NICE[cfg.prio]}): {e.strerror or e}")
    return warnings


def strict_cpus(cfg) -> list[int]:
    """The CPUs compute threads are pinned to, one each (--cpu-strict 1), or [] for none."""
    if cfg.cpu_strict != 1:
        return []
    if cfg.cpus is not None:
        allowed = set(os.sched_getaffinity(0))
        return [c for c in cfg.cpus if c in allowed] or sorted(allowed)
    return sorted(os.sched_getaffinity(0))
