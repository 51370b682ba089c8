"""The machine a measurement ran on, as every published figure states it."""

from __future__ import annotations

import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name (as lscpu prints it) with /proc/cpuinfo's family and model (a
    virtual machine's name is vague), or the platform's processor string."""
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        name = fields["model name"]
    except (OSError, KeyError):
        return platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def machine() -> dict[str, Any]:
    """CPU, core count, the ISA torch's CPU kernels use, torch version, date."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def describe(meta: dict[str, Any]) -> str:
    """One line for a report: command, date, CPU, cores, torch and its ISA."""
    return (
        f"{meta.get('command', '')} · {meta.get('date', '')} · {meta.get('cpu', '')}, "
        f"{meta.get('cores', '')} cores, torch {meta.get('torch', '')} ISA {meta.get('isa', '')}"
    )
