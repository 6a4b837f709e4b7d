"""A small user model that counts its forward passes; run as a script it extracts into a store.

``python slow_extraction.py STORE DELAY`` extracts two layers of 40 images, 4 per batch,
sleeping DELAY seconds per batch, so a test can kill it part way.
"""

import sys
import time

import numpy as np
import torch
from torch import nn

from scene2brain.features import FeatureModel, Preprocessing, extract_features

IMAGES = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
LAYERS = ["conv", "output"]
DELAY = 0.0


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        time.sleep(DELAY)
        return self.conv(x)


def counting_model(seed=0, prep=None):
    torch.manual_seed(seed)
    return FeatureModel.from_module(Counting(), prep or Preprocessing(16, None), name="counting")


if __name__ == "__main__":
    DELAY = float(sys.argv[2])
    extract_features(IMAGES, counting_model(), LAYERS, "avg", batch_size=4, store=sys.argv[1], progress=False)
