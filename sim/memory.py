"""Free memory on a device, for refusing requests that cannot fit before any allocation."""

from __future__ import annotations

import numpy as np

from meanfield.resources import available_memory as _host_memory
from meanfield.resources import gib

#: floats per draw and layer that sim.simulate keeps (the engine's ten per-layer statistics, the
#: traces' products, and their stacked copies in the Dataset).
RESULT_FLOATS_PER_DRAW_LAYER = 24


def available_memory(device: str) -> int:
    """Free bytes on the device (CUDA: cudaMemGetInfo; CPU: the host's MemAvailable)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return _host_memory()


def draw_bytes(widths, depth: int, batch: int, itemsize: int, weight_memory: int) -> int:
    """Bytes one draw of ``sim.simulate`` needs: the activations and derivatives kept for the
    backward pass, the weights kept within ``weight_memory``, and the working tensors.

    ``widths`` is N_0..N_L, or one number for every layer: then nothing of size ``depth`` is built.
    """
    if np.ndim(widths) == 0:
        n, layer = float(widths), float(widths) ** 2 * itemsize
        acts, widest, largest = 2.0 * batch * n * (depth + 1) * itemsize, n, layer
        kept = min(depth, weight_memory // layer) * layer if layer > 0 else 0.0
    else:
        n = np.asarray(widths, dtype=float)
        acts, widest = 2.0 * batch * n.sum() * itemsize, n.max()
        weights = n[1:] * n[:-1] * itemsize
        largest = weights.max()
        kept, budget = 0.0, weight_memory
        for nbytes in weights:  # the engine keeps a layer's weights while they fit in what is left
            if nbytes <= budget:
                kept += nbytes
                budget -= nbytes
    work = 2.0 * largest + 6.0 * batch * widest * itemsize
    return int(acts + kept + work)


def result_bytes(depth: int, seeds: int) -> int:
    """Bytes of the per-draw, per-layer results of ``sim.simulate``."""
    return int(RESULT_FLOATS_PER_DRAW_LAYER * 8 * float(seeds) * (depth + 1))


def require_simulation_memory(depth: int, widths, batch: int, seeds: int, dtype: str, device: str,
                              weight_memory: int = 2 * 1024**3) -> None:
    """Refuse (ValueError with the estimate) a simulation that cannot fit, before any allocation.

    ``widths`` may be one number (every layer): then nothing of size ``depth`` is built.
    """
    itemsize = 4 if dtype == "float32" else 8
    per_draw = draw_bytes(widths, depth, batch, itemsize, weight_memory)
    results = result_bytes(depth, seeds)
    have = available_memory(device)
    if per_draw > have:
        raise ValueError(f"this network needs about {gib(per_draw)} on {device} for one draw (activations of "
                         f"{depth + 1} layers x batch {batch}) but {gib(have)} is free; reduce batch, width or "
                         "depth, or lower weight_memory")
    if results + per_draw > have:
        raise ValueError(f"{seeds} draws x {depth + 1} layers of results need about {gib(results)} but "
                         f"{gib(have)} is free; use fewer draws (seeds) or layers")
