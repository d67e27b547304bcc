"""Free memory on a device, for refusing requests that cannot fit before any allocation."""

from __future__ import annotations

import os


def available_memory(device: str) -> int:
    """Free bytes on the device (CUDA: cudaMemGetInfo; CPU: MemAvailable)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
