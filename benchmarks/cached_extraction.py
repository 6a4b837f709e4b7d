"""A fully cached ``scene2brain extract``: its cost beyond starting Python and importing torch.

A cached re-run finds its store entries from the key the store recorded when the model
was built (its weights digest included), so it neither builds the network nor reads its
weights. In this one run, each a fresh process timed from the outside (median of
``--repeats``):

- **(a) imports**: ``python -c "import torch, scene2brain"``;
- **(b) first extract**: ``scene2brain extract`` of ``--n-images`` images (an image folder
  of PNG files) into an empty store;
- **(c) cached re-run**: the same command again, every layer in the store;
- **(d) cached re-run without the record**: the same after deleting the store's record of
  model keys (``.model_keys.json``), so the network is built and its weights digested to
  find the key, as every cached re-run did before the record existed.

Printed: the medians, (c) - (a) (what a cached re-run costs beyond the imports), (c) / (b)
and (d) - (c) (what building the model to find the key cost).

Usage::

    python benchmarks/cached_extraction.py                       # 64 images, efficientnet-lite0
    python benchmarks/cached_extraction.py --n-images 256 --repeats 5
    python benchmarks/cached_extraction.py --model alexnet --weights random --layers features.5,classifier.5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

# scene2brain.features.store.FeatureStore.MEMO_FILE. This process does not import scene2brain: every timing is of
# a fresh process, and the benchmark's own imports stay out of them.
MEMO_FILE = ".model_keys.json"


def write_images(folder: Path, n: int, size: int = 256, seed: int = 0) -> None:
    """``n`` PNG files: random square crops of bundled photographs, resized to ``size`` px."""
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        crop = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        image = Image.fromarray(photo[y : y + crop, x : x + crop]).resize((size, size), Image.Resampling.LANCZOS)
        image.save(folder / f"{i:04d}.png")


def timed(command: list[str]) -> float:
    """Wall seconds of a fresh process running ``command`` (which must succeed)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--weights", default="pretrained", help="pretrained, random or a weights file")
    parser.add_argument("--layers", default="_blocks.5,_blocks.10,head")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.n_images < 1 or args.repeats < 1:
        parser.error("--n-images and --repeats: expected positive integers")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_images(tmp / "images", args.n_images)
        imports = [sys.executable, "-c", "import torch, scene2brain"]
        times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
        for r in range(args.repeats):
            store = tmp / f"store{r}"
            extract = [
                sys.executable, "-m", "scene2brain", "extract", "--stimuli", str(tmp / "images"), "--out", str(store),
                "--model", args.model, "--weights", args.weights, "--layers", args.layers,
                "--batch-size", str(args.batch_size), "--quiet",
            ]  # fmt: skip
            times["a"].append(timed(imports))
            times["b"].append(timed(extract))
            times["c"].append(timed(extract))
            (store / MEMO_FILE).unlink()
            times["d"].append(timed(extract))  # builds the model to find the key (and records it again)
            print(f"run {r + 1}/{args.repeats}: " + "  ".join(f"({k}) {v[-1]:.2f} s" for k, v in times.items()))

    a, b, c, d = (statistics.median(times[k]) for k in "abcd")
    print(f"\n{args.model} ({args.weights}), layers {args.layers}, {args.n_images} images; medians of {args.repeats}:")
    print(f"  (a) python -c 'import torch, scene2brain'        {a:7.2f} s")
    print(f"  (b) first scene2brain extract                     {b:7.2f} s")
    print(f"  (c) cached re-run                                 {c:7.2f} s")
    print(f"  (d) cached re-run without the key record          {d:7.2f} s")
    print(f"  (c) - (a): cached re-run beyond the imports       {c - a:7.2f} s")
    print(f"  (c) / (b): cached re-run / first run              {c / b:7.3f}")
    print(f"  (d) - (c): building the model to find its key     {d - c:7.2f} s")


if __name__ == "__main__":
    main()
