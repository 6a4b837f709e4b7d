"""The bottleneck network at F-BNet size: seconds per epoch and peak memory, CPU or CUDA.

F-BNet (Ndubuaku 2023) maps 300 image PCs through a width-6,000 residual MLP to 75 fMRI
PCs per hemisphere (150 outputs), trained with Lion in batches of 128 on about 8,000
NSD images per subject. This benchmark fits
:class:`scene2brain.encoding.bottleneck.BottleneckNetwork` on random data of that shape
(features of ``--features`` columns reduced to 300 PCs; two hemispheres of ``--voxels``
voxels each, reduced to 75 PCs each; 10% of the rows held out for early stopping, which is
disabled by ``patience = epochs``) and prints:

- the time of the two reductions (feature and response standardisation + PCA);
- seconds per epoch (median over epochs, the validation pass included);
- peak memory: CPU: the process's maximum resident set size (``ru_maxrss``) and numpy's
  peak during the fit (``tracemalloc``); CUDA: ``torch.cuda.max_memory_allocated``;
- the parameter count (F-BNet: about 39.6 M, 36 M of them in the 6,000 x 6,000 block).

Usage::

    python benchmarks/bottleneck_network.py                          # full size, 2 epochs, CPU
    python benchmarks/bottleneck_network.py --size small --epochs 5  # 2,000 rows, width 1,024
    python benchmarks/bottleneck_network.py --device cuda --epochs 5
    python benchmarks/bottleneck_network.py --optimizer adamw --batch-size 256
"""

from __future__ import annotations

import argparse
import gc
import importlib
import resource
import time
import tracemalloc

import numpy as np
import torch

from scene2brain.encoding.bottleneck import BottleneckNetwork

SIZES = {
    # rows, features, voxels per hemisphere, input PCs, width, PCs per hemisphere
    "full": dict(n=8000, features=768, voxels=2000, n_input_components=300, width=6000, n_output_components=75),
    "small": dict(n=2000, features=256, voxels=500, n_input_components=100, width=1024, n_output_components=75),
}


def make_data(n: int, features: int, voxels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 features, responses of two hemispheres (a low-rank signal plus noise) and the hemisphere labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features), dtype=np.float32)
    W = rng.standard_normal((features, 2 * voxels), dtype=np.float32) / np.sqrt(features)
    Y = np.tanh(X @ W) + rng.standard_normal((n, 2 * voxels), dtype=np.float32)
    return X, Y, np.repeat(["lh", "rh"], voxels)


def maxrss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--optimizer", choices=("lion", "adamw"), default="lion")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    size = SIZES[args.size]
    if args.threads:
        torch.set_num_threads(args.threads)
    importlib.import_module("torch._dynamo")  # imported by the first optimiser (~3 s once): kept out of the timings
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    X, Y, hemispheres = make_data(size["n"], size["features"], size["voxels"])
    print(
        f"{args.size}: {size['n']} rows x {size['features']} features -> {size['n_input_components']} PCs -> width "
        f"{size['width']} -> 2 x {size['n_output_components']} PCs -> 2 x {size['voxels']} voxels; batch "
        f"{args.batch_size}, {args.optimizer}; device {device} ({where}); torch {torch.__version__}",
        flush=True,
    )
    lr = 1e-4 if args.optimizer == "lion" else 1e-3
    model = BottleneckNetwork(
        n_input_components=size["n_input_components"],
        n_output_components=size["n_output_components"],
        width=size["width"],
        optimizer=args.optimizer,
        lr=lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.epochs,
        device=device,
    )
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start = time.perf_counter()
    model.fit(X, Y, groups=hemispheres)
    total = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = model.history_["elapsed"]
    training = float(elapsed[-1])
    per_epoch = float(np.median(np.diff(np.r_[0.0, elapsed])))
    start = time.perf_counter()
    model.predict(X)
    predict = time.perf_counter() - start
    params = sum(p.numel() for p in model.module_.parameters())
    memory = f"numpy peak {peak / 1e9:.2f} GB, max RSS {maxrss_gb():.2f} GB"
    if device.startswith("cuda"):
        memory += f", CUDA peak {torch.cuda.max_memory_allocated() / 1e9:.2f} GB"
    print(f"parameters          {params / 1e6:.1f} M")
    print(f"reductions (PCAs)   {total - training:.1f} s")
    print(f"seconds per epoch   {per_epoch:.2f} ({model.n_epochs_} epochs, {len(model.training_indices_)} rows)")
    print(f"predict all rows    {predict:.2f} s")
    print(f"memory              {memory}")
    print(f"reconstruction ceiling (median R^2, training rows) {np.median(model.reconstruction_ceiling_):.3f}")


if __name__ == "__main__":
    main()
