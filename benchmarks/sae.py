"""Sparse autoencoders: the one-layer dictionary SAE vs the seed project's MLP configuration.

Simulated sparse responses: ``X = S @ D + noise`` (float32), ``--atoms`` random atoms
(per-voxel entries N(0, 1)), each stimulus using 1-6 of them with weights U(0.5, 1.5),
plus unit Gaussian noise; default 8,000 stimuli x 4,000 voxels. Both models are fitted
with :class:`scene2brain.representation.SparseAutoencoder` on the same rows, the same
per-voxel z-score and the same validation part (10% of the rows, seeded):

- ``seed-mlp``: the seed's reported runs (P1, "high_sparsity_64"): the MLP
  ``D -> D//3 -> D//6 -> 64`` with batch norm, L1 weight 0.1, AdamW (lr 1e-4, weight decay
  1e-4), batch 256, static ERK weight masks at sparsity 0.85, ``--seed-epochs`` epochs
  (150 in the seed) without early stopping;
- ``dictionary``: the default one-layer SAE with 64 latents (L1 0.1, lr 1e-3, batch 256,
  dense weights), up to ``--max-epochs`` epochs without early stopping.

Printed per model: seconds per epoch (median of the per-epoch times, validation
included), the best validation reconstruction MSE (z-units), the peak memory (CPU: the
process's maximum resident set size so far, ``ru_maxrss``, and numpy allocations during the
fit, ``tracemalloc``; CUDA: ``torch.cuda.max_memory_allocated``), and for the dictionary SAE
the time and epoch at which its validation MSE first reaches the seed configuration's
best one.

Usage::

    python benchmarks/sae.py                       # 8,000 x 4,000, seed 150 epochs (long on CPU)
    python benchmarks/sae.py --quick               # 2,000 x 1,000, seed 40 epochs
    python benchmarks/sae.py --device cuda
    python benchmarks/sae.py --seed-epochs 20      # a shorter seed budget (a weaker target)
    python benchmarks/sae.py --quick --threads 1   # on a loaded shared machine one thread is much faster
"""

from __future__ import annotations

import argparse
import gc
import importlib
import resource
import time
import tracemalloc
from typing import Any

import numpy as np
import torch

from scene2brain.representation import SparseAutoencoder

SEED_CONFIG = dict(
    architecture="mlp", n_latents=64, l1=0.1, lr=1e-4, weight_decay=1e-4, batch_size=256, weight_sparsity=0.85
)
DICTIONARY_CONFIG = dict(architecture="dictionary", n_latents=64, l1=0.1, lr=1e-3, weight_decay=1e-4, batch_size=256)


def make_data(n: int, voxels: int, atoms: int, seed: int = 0) -> np.ndarray:
    """float32 ``S @ D + noise`` with 1-6 active atoms per row, built in row blocks."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((atoms, voxels), dtype=np.float32)
    X = np.empty((n, voxels), dtype=np.float32)
    for start in range(0, n, 1000):
        stop = min(n, start + 1000)
        S = np.zeros((stop - start, atoms), dtype=np.float32)
        for row in range(stop - start):
            active = rng.choice(atoms, rng.integers(1, 7), replace=False)
            S[row, active] = rng.uniform(0.5, 1.5, len(active))
        X[start:stop] = S @ D + rng.standard_normal((stop - start, voxels), dtype=np.float32)
    return X


def maxrss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: kilobytes


def fit(X: np.ndarray, config: dict[str, Any], epochs: int, device: str) -> tuple[SparseAutoencoder, float, str]:
    """Fit without early stopping; return the model, the wall time and a memory note."""
    gc.collect()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start = time.perf_counter()
    sae = SparseAutoencoder(**config, max_epochs=epochs, patience=epochs, device=device, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    memory = f"numpy {peak / 1e9:5.2f} GB, max RSS {maxrss_gb():5.2f} GB"
    if cuda:
        memory += f", CUDA {torch.cuda.max_memory_allocated() / 1e9:5.2f} GB"
    return sae, seconds, memory


def per_epoch(sae: SparseAutoencoder) -> float:
    return float(np.median(np.diff(np.r_[0.0, sae.history_["elapsed"]])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 stimuli x 1,000 voxels, seed 40 epochs")
    parser.add_argument("--stimuli", type=int, default=None)
    parser.add_argument("--voxels", type=int, default=None)
    parser.add_argument("--atoms", type=int, default=128)
    parser.add_argument("--seed-epochs", type=int, default=None, help="epochs of the seed configuration (150)")
    parser.add_argument("--max-epochs", type=int, default=None, help="epochs of the dictionary SAE at most")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    n = args.stimuli or (2000 if args.quick else 8000)
    voxels = args.voxels or (1000 if args.quick else 4000)
    seed_epochs = args.seed_epochs or (40 if args.quick else 150)
    max_epochs = args.max_epochs or seed_epochs
    if args.threads:
        torch.set_num_threads(args.threads)
    importlib.import_module("torch._dynamo")  # imported by the first optimiser (~3 s once): kept out of the timings

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if device == "auto":
        device = "cpu"
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    X = make_data(n, voxels, args.atoms)
    print(f"{n} stimuli x {voxels} voxels, {args.atoms} atoms; device {device} ({where}); torch {torch.__version__}",
          flush=True)  # fmt: skip

    seed, t_seed, mem_seed = fit(X, SEED_CONFIG, seed_epochs, device)
    target = float(seed.history_["validation_mse"].min())
    dictionary, t_dict, mem_dict = fit(X, DICTIONARY_CONFIG, max_epochs, device)
    mse = dictionary.history_["validation_mse"]
    reached = np.flatnonzero(mse <= target)
    header = f"{'model':<12} {'epochs':>6} {'s/epoch':>8} {'fit s':>8} {'best val MSE':>12}  memory"
    print(header)
    print("-" * len(header))
    for name, sae, seconds, memory in (
        ("seed-mlp", seed, t_seed, mem_seed),
        ("dictionary", dictionary, t_dict, mem_dict),
    ):
        best = float(sae.history_["validation_mse"].min())
        print(f"{name:<12} {sae.n_epochs_:>6} {per_epoch(sae):>8.3f} {seconds:>8.1f} {best:>12.4f}  {memory}")
    seed_time = float(seed.history_["elapsed"][int(np.argmin(seed.history_["validation_mse"]))])
    print(f"seed-mlp reaches its best validation MSE {target:.4f} after {seed_time:.1f} s")
    if len(reached):
        epoch = int(reached[0])
        t = float(dictionary.history_["elapsed"][epoch])
        print(
            f"dictionary reaches it after {t:.1f} s (epoch {epoch + 1}): {seed_time / t:.1f}x sooner; "
            f"its own best {float(mse.min()):.4f}"
        )
    else:
        print(f"dictionary does not reach it in {max_epochs} epochs (best {float(mse.min()):.4f})")


if __name__ == "__main__":
    main()
