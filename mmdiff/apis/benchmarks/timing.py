"""Measurement helpers of ``tools/analysis_tools/benchmark.py``: synchronised timers, the device's matmul peak, counted
FLOPs, memory, errors against a reference and a profiler table. Needs torch only; nothing else in mmdiff times anything.
"""
import os
import platform
import statistics
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for on the CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(run: Callable[[], None], device: torch.device) -> float:
    """Wall time of one call, with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def median_seconds(run: Callable[[], None], repeats: int, warmup: int = 1,
                   device: torch.device = torch.device('cpu')) -> float:
    """Median wall time of ``run`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    return statistics.median(timed(run, device) for _ in range(repeats))


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's with the number of threads torch uses."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads'


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """The best of a few square matmuls: the throughput the convolutions and attention are measured against."""
    n = 8192 if device.type == 'cuda' else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = min(timed(lambda: a @ b, device) for _ in range(10))
    return 2 * n**3 / seconds / 1e12


def count_flops(run: Callable[[], None]) -> int:
    """FLOPs of one call of ``run`` as PyTorch's flop counter counts them (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def relative_error(reference: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> float:
    """The largest ``||out - ref|| / ||ref||`` over the outputs."""
    return max(((out.float() - ref.float()).norm() / ref.float().norm()).item()
               for ref, out in zip(reference, outputs))


def host_synchronisations(run: Callable[[], None], device: torch.device) -> int:
    """How many times ``run`` makes the host wait for the device (CUDA's sync debug mode); 0 off CUDA."""
    if device.type != 'cuda':
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode('default')
    return sum('synchronizing' in str(warning.message) for warning in caught)


def weights_gib(module: nn.Module) -> float:
    """Memory held by a module's parameters and buffers, in GiB."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors) / 2**30


def resident_gib() -> Optional[float]:
    """The process's resident memory now, in GiB (Linux ``/proc/self/statm``); None where that file is missing."""
    statm = '/proc/self/statm'
    if not os.path.isfile(statm):
        return None
    with open(statm) as file:
        pages = int(file.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**30


def profile_top_ops(run: Callable[[], None], device: torch.device, calls: int = 3,
                    row_limit: int = 15) -> Dict:
    """Profile ``calls`` warm calls of ``run`` with ``torch.profiler`` and rank the operators and kernels.

    On CUDA the GPU kernels are ranked by their device time, elsewhere the operators by their self CPU time (both
    add up to the profiled time without counting anything twice).

    Args:
        run (Callable): One call to profile (already warm: compiled, graphs recorded).
        device (torch.device): Where it runs.
        calls (int): Profiled calls. Defaults to 3.
        row_limit (int): Rows kept. Defaults to 15.

    Returns:
        dict: ``sort_by``, ``total_ms`` (per call, the sum over all ranked events), ``rows`` (per event:
        ``name``, ``calls`` per call, ``self_ms`` per call, ``fraction`` of ``total_ms``) and ``table`` (the
        profiler's own text table).
    """
    from torch.profiler import ProfilerActivity, profile
    on_cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    synchronize(device)
    with profile(activities=activities) as profiler:
        for _ in range(calls):
            run()
        synchronize(device)
    averages = profiler.key_averages()
    attribute = 'self_device_time_total' if on_cuda else 'self_cpu_time_total'
    kind = torch.autograd.DeviceType.CUDA if on_cuda else torch.autograd.DeviceType.CPU
    events = sorted((event for event in averages if event.device_type == kind and getattr(event, attribute) > 0),
                    key=lambda event: getattr(event, attribute), reverse=True)
    total_us = sum(getattr(event, attribute) for event in events)
    rows: List[Dict] = [dict(name=event.key, calls=event.count // calls,
                             self_ms=getattr(event, attribute) / calls / 1e3,
                             fraction=getattr(event, attribute) / total_us) for event in events[:row_limit]]
    return dict(sort_by=attribute, total_ms=total_us / calls / 1e3, rows=rows,
                table=averages.table(sort_by=attribute, row_limit=row_limit))
