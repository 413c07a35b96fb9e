"""How fast can any CPU backend run a MedNeXt forward here? Arithmetic against this machine's GEMM peak.

Counts the forward's floating-point operations (torch's ``FlopCounterMode``) and measures the CPU's
single-precision GEMM peak (a large square ``torch.mm``), which gives a lower bound on any runtime's
forward: every operation at the best rate this CPU reaches. Then times torch's forward and, when
OpenVINO is installed, its forward with the backend's settings (one stream, all threads) and with two
streams of one thread each running two tiles at once. Prints what a given speed-up over torch would
need, as a fraction of that peak.

    python3 benchmarks/cpu_bounds.py                       # MedNeXt-S, full width, 128^3, 2 threads
    python3 benchmarks/cpu_bounds.py --size 96 --rounds 5

Torch runs first, in a process set up as the ``mednext_*`` commands set theirs up; OpenVINO after it
(its idle worker threads slowed a later torch forward in one process).
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_common import as_the_cli_runs  # noqa: E402


def _times(fn, rounds: int) -> list[float]:
    fn()  # warm-up: first-call set-up and allocations
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def gemm_peak_gflops(threads: int, n: int = 4096, rounds: int = 5) -> float:
    """The best of ``rounds`` products: a peak (the shared machine's speed moved 140-180 between runs)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / min(_times(lambda: a @ b, rounds)) / 1e9


def forward_gflop(net, x) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return counter.get_total_flops() / 1e9


def openvino_times(net, shape, threads: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per tile: the backend's set-up (LATENCY, one stream) and two streams of one thread."""
    import numpy as np
    import openvino as ov

    from mednext_fw.inference.backends.onnx_export import onnx_bytes

    model = ov.convert_model(io.BytesIO(onnx_bytes(net, shape, fused_norm=True)))
    model.reshape({model.inputs[0]: ov.PartialShape(list(shape))})
    core = ov.Core()
    base = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    latency = core.compile_model(model, "CPU", {**base, "PERFORMANCE_HINT": "LATENCY"})
    streams = core.compile_model(model, "CPU", {**base, "NUM_STREAMS": threads})
    tiles = [np.random.default_rng(i).random(shape, dtype=np.float32) for i in range(2 * threads)]
    request = latency.create_infer_request()
    queue = ov.AsyncInferQueue(streams, threads)

    def one_stream():
        for tile in tiles:
            request.infer({0: tile})

    def parallel():
        for tile in tiles:
            queue.start_async({0: tile})
        queue.wait_all()

    settings = [("one stream", one_stream), (f"{threads} streams", parallel)]
    out = {name: [] for name, _ in settings}
    one_stream(), parallel()  # warm-up
    for r in range(rounds):
        for name, fn in settings if r % 2 == 0 else settings[::-1]:  # a drift of the machine falls on both
            start = time.perf_counter()
            fn()
            out[name].append((time.perf_counter() - start) / len(tiles))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="S")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--speedup", type=float, default=2.0, help="the speed-up over torch to price")
    args = p.parse_args()
    as_the_cli_runs()  # before torch allocates: the commands' huge pages for its tensors
    import torch

    from mednext_fw.inference.backends.runtimes import is_available
    from mednext_fw.network_architectures.mednext import create_mednext

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = create_mednext(args.variant, 1, 4, kernel_size=3, n_channels=args.channels).eval()
    shape = (1, 1, *(args.size,) * 3)
    x = torch.randn(shape)
    gflop = forward_gflop(net, x)
    peak = gemm_peak_gflops(args.threads)
    with torch.no_grad():
        torch_s = _times(lambda: net(x), args.rounds)
    t = statistics.median(torch_s)
    bound = gflop / peak
    print(f"MedNeXt-{args.variant} width {args.channels}, {args.size}^3, {args.threads} threads")
    print(f"forward: {gflop:.1f} GFLOP; sgemm peak {peak:.0f} GFLOP/s -> no backend under {bound:.2f} s")
    print(f"torch forward {t:.2f} s [{min(torch_s):.2f}-{max(torch_s):.2f}] = {gflop / t:.0f} GFLOP/s "
          f"({gflop / t / peak:.0%} of peak)")
    target = t / args.speedup
    print(f"{args.speedup:g}x torch = {target:.2f} s per forward = {gflop / target:.0f} GFLOP/s "
          f"({gflop / target / peak:.0%} of the sgemm peak on every operation)")
    if not is_available("openvino"):
        print("OpenVINO not installed: pip install -e '.[deploy]' for its rows")
        return
    for name, times in openvino_times(net, shape, args.threads, args.rounds).items():
        m = statistics.median(times)
        print(f"OpenVINO {name}: {m:.2f} s per tile [{min(times):.2f}-{max(times):.2f}] = {gflop / m:.0f} GFLOP/s "
              f"({gflop / m / peak:.0%} of peak), {t / m:.2f}x torch")


if __name__ == "__main__":
    main()
