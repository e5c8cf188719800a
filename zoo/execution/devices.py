"""This host and its training devices: its name, whether it trains on a GPU, how many runs a device
takes at once and each one's share of GPU memory. Asks ``nvidia-smi``, never TensorFlow, so pages can
show it without importing a backend."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from zoo.core.settings import load_settings

GPU_MEMORY_PER_RUN_MB = 16_000
MAX_RUNS_PER_GPU = 8
GPU_MEMORY_SHARED = 0.9  # of a GPU's memory, split between its concurrent runs (the rest: the driver)


def host_name() -> str:
    """This host's name among the hosts that share a run store: ``ZOO_HOST``, else the machine's name.

    Two pools on one machine with different ``ZOO_HOME`` and ``ZOO_HOST`` act as two hosts.
    """
    return load_settings().host


def detect_device() -> str:
    """``gpu`` when this host has an NVIDIA GPU, else ``cpu``."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return "cpu"
    nvidia_smi = shutil.which("nvidia-smi")
    if not nvidia_smi:
        return "cpu"
    try:
        listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "cpu"
    return "gpu" if listing.returncode == 0 and "GPU" in listing.stdout else "cpu"


def describe_device() -> str:
    """One line for people: which GPU(s) this host trains on, or that it trains on the CPU."""
    if detect_device() == "gpu":
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5, check=False)
        names = [
            line.split(":", 1)[1].split("(")[0].strip() for line in listing.stdout.splitlines() if ":" in line
        ]
        return f"GPU: {', '.join(names)}"
    return f"CPU ({os.cpu_count()} cores)"


def runs_per_device(device: str) -> int:
    """How many runs of one lane a device trains at once (``ZOO_RUNS_PER_DEVICE``, else 1 on a CPU
    and one per 16 GB of memory on a GPU, at most 8).

    Raises:
        SettingsError: a setting is not what it takes (this one: a whole number from 1 to 64).
    """
    chosen = load_settings().runs_per_device
    if chosen is not None:
        return chosen
    by_memory = gpu_memory_mb() // GPU_MEMORY_PER_RUN_MB if device != "cpu" else 1
    return max(1, min(MAX_RUNS_PER_GPU, by_memory))


@functools.cache
def gpu_memory_mb() -> int:
    """The memory of this host's smallest GPU in MB, as ``nvidia-smi`` reports it (0 without one);
    asked once per process."""
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return min(int(float(line)) for line in listing.stdout.split())
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return 0


def memory_fraction(device: str) -> float | None:
    """The share of a GPU's memory one run may take (None on a CPU)."""
    return None if device == "cpu" else GPU_MEMORY_SHARED / runs_per_device(device)
