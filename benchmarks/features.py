"""Feature extraction: scene2brain vs a plain torch loop, and the cost of a cached re-run.

For each model the script builds the same uint8 images at the model's input size
(crops of scikit-image photographs) and times, in this one process:

- **plain torch**: ``model(x)`` over batches of tensors preprocessed beforehand, under
  ``torch.inference_mode()``, nothing else (no hooks, no copies, no pooling);
- **scene2brain**: ``extract_features`` on the uint8 images, which also converts and
  normalises every batch, hooks three layers, pools them and returns numpy arrays;
- **first run with a store** and the **fully cached re-run** with that store (digest of
  the images, weights digest, reading the stored matrices).

Every timing is the best of ``--repeats`` runs. Overhead = scene2brain / plain - 1.
Weights are random (speed does not depend on their values; AlexNet's pretrained
weights cannot be downloaded offline).

Usage::

    python benchmarks/features.py                  # 256 images, both models, CPU
    python benchmarks/features.py --n-images 512 --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from skimage import data

from scene2brain.features import extract_features, load_model

MODELS = {
    "efficientnet-lite0": ["_blocks.5", "_blocks.10", "head"],
    "alexnet": ["features.5", "features.12", "classifier.5"],
}


def make_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` random ``size`` x ``size`` RGB crops of bundled photographs (uint8)."""
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        crop = min(h, w, max(size, int(rng.integers(size, min(h, w) + 1))))
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        patch = torch.from_numpy(np.ascontiguousarray(photo[y : y + crop, x : x + crop])).permute(2, 0, 1)[None]
        resized = torch.nn.functional.interpolate(patch.float(), size=(size, size), mode="bilinear", antialias=True)
        out[i] = resized[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
    return out


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, {args.n_images} images")
    header = f"{'model':20s} {'plain img/s':>12s} {'s2b img/s':>10s} {'overhead':>9s} {'1st+store s':>12s} {'cached s':>9s} {'cached/1st':>11s}"  # noqa: E501
    print(header)
    for name in args.models:
        model = load_model(name, weights="random")
        images = make_images(args.n_images, model.preprocessing.size)
        tensors = [
            model.preprocessing(images[i : i + args.batch_size]).to(device)
            for i in range(0, len(images), args.batch_size)
        ]
        net = model.module.eval().to(device)

        def plain(net=net, tensors=tensors) -> None:
            with torch.inference_mode():
                for x in tensors:
                    net(x)
            if device.type == "cuda":
                torch.cuda.synchronize()

        def ours(name=name, model=model, images=images) -> None:
            extract_features(
                images, model, MODELS[name], "avg", batch_size=args.batch_size, device=device, progress=False
            )

        plain()  # warm-up (allocator, kernels)
        t_plain = best_of(args.repeats, plain)
        t_ours = best_of(args.repeats, ours)
        with tempfile.TemporaryDirectory() as store:
            kwargs = dict(batch_size=args.batch_size, device=device, store=store, progress=False)
            t = time.perf_counter()
            extract_features(images, model, MODELS[name], "avg", **kwargs)
            t_first = time.perf_counter() - t
            t_cached = best_of(
                args.repeats, lambda i=images, m=model, n=name, k=kwargs: extract_features(i, m, MODELS[n], "avg", **k)
            )
        n = len(images)
        print(
            f"{name:20s} {n / t_plain:12.1f} {n / t_ours:10.1f} {t_ours / t_plain - 1:9.1%} "
            f"{t_first:12.2f} {t_cached:9.3f} {t_cached / t_first:11.2%}"
        )


if __name__ == "__main__":
    main()
