"""What this CPU is and which instruction sets it reports (``/proc/cpuinfo`` flags).

Tuning names the CPU a pick was measured on (a pick saved on one machine is re-gated on
another), and the roofline takes each precision's peak from these flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The flags that decide which kernels an engine can use, widest first per family.
ISA_FLAGS = (
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx_vnni",
    "avx512f",
    "avx2",
    "fma",
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    mhz: float | None
    cores: int  # the cores this process may run on

    @property
    def isa(self) -> list[str]:
        """The tuning-relevant flags this CPU reports, in ``ISA_FLAGS`` order."""
        return [f for f in ISA_FLAGS if f in self.flags]

    def has(self, *flags: str) -> bool:
        return any(f in self.flags for f in flags)

    def describe(self) -> str:
        return f"{self.model or 'unknown CPU'} ({', '.join(self.isa) or 'no SIMD flags'})"


def parse_cpuinfo(text: str) -> tuple[frozenset[str], float | None, str]:
    """(flags, "cpu MHz", "model name") of the first processor in ``text``."""
    flags: frozenset[str] = frozenset()
    mhz: float | None = None
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = frozenset(value.split())
        elif key == "cpu MHz" and mhz is None:
            try:
                mhz = float(value)
            except ValueError:
                mhz = None
        elif key == "model name" and not model:
            model = value.strip()
    return flags, mhz, model


def cpu_info(cpuinfo: str | None = None, cores: int | None = None) -> CpuInfo:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags, mhz, model = parse_cpuinfo(cpuinfo)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return CpuInfo(model=model, flags=flags, mhz=mhz, cores=max(1, cores))
