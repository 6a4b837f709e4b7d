"""COCO object categories of NSD images, as the subjects saw them (after NSD's crop).

NSD showed a square crop of each COCO image. ``cropBox`` in ``nsd_stim_info_merged.csv``
gives the fractions (top, bottom, left, right) removed from each side, so an object
annotated in COCO may be partly or wholly outside what was shown. A category counts
for an image when some annotation of it keeps more than ``min_visible_fraction`` of
its bounding box inside the crop. Needs ``pycocotools`` (``pip install
"scene2brain[coco]"``) and COCO 2017 ``instances_{train2017,val2017}.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scene2brain.data.datasets._files import DatasetFileError, require


def visible_fraction(bbox: Sequence[float], crop_box: Sequence[float], height: float, width: float) -> float:
    """Share of a COCO ``[x, y, w, h]`` box inside the NSD crop ``(top, bottom, left, right)``.

    Examples
    --------
    >>> visible_fraction([0, 0, 10, 10], (0.5, 0.0, 0.0, 0.0), 10, 10)  # top half of a 10 x 10 image cut away
    0.5
    """
    top, bottom, left, right = crop_box
    y0, y1 = top * height, height - bottom * height
    x0, x1 = left * width, width - right * width
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return 0.0
    inter_w = max(0.0, min(x + w, x1) - max(x, x0))
    inter_h = max(0.0, min(y + h, y1) - max(y, y0))
    return float(inter_w * inter_h / (w * h))


def nsd_coco_categories(
    stim_info: pd.DataFrame,
    annotations_dir: str | Path,
    nsd_ids: Sequence[int] | np.ndarray | None = None,
    min_visible_fraction: float = 0.0,
) -> pd.DataFrame:
    """Which COCO categories are visible in each NSD image.

    Parameters
    ----------
    stim_info : DataFrame
        From :func:`scene2brain.data.datasets.nsd.read_stim_info` (``nsdId``, ``cocoId``,
        ``cocoSplit``, ``cropBox`` as tuples).
    annotations_dir : path
        Folder with ``instances_train2017.json`` and/or ``instances_val2017.json``.
    nsd_ids : sequence of int, optional
        0-based 73k ids; default every row of ``stim_info``.
    min_visible_fraction : float
        A category counts when an annotation keeps more than this share of its box
        inside the crop (0: any visible part).

    Returns
    -------
    DataFrame
        Indexed by ``nsd_id``; one boolean column per COCO category (by name, in
        category-id order; ``person`` is the first).
    """
    try:
        from pycocotools.coco import COCO
    except ImportError as err:
        raise ImportError(
            "nsd_coco_categories needs pycocotools: pip install 'scene2brain[coco]' (or pip install pycocotools)"
        ) from err
    rows = stim_info.set_index("nsdId", drop=False)
    ids = rows.index.to_numpy() if nsd_ids is None else np.asarray(nsd_ids)
    missing = np.setdiff1d(ids, rows.index.to_numpy())
    if len(missing):
        raise ValueError(f"nsd_ids: {len(missing)} ids are not in the stimulus table (first: {missing[0]})")
    rows = rows.loc[ids]
    out = None
    for split, group in rows.groupby("cocoSplit", sort=True):
        path = require(Path(annotations_dir) / f"instances_{split}.json", f"COCO {split} instance annotations")
        try:
            coco = COCO(str(path))
        except Exception as err:
            raise DatasetFileError(f"{path}: not readable as COCO annotations: {err}") from err
        categories = sorted(coco.cats.values(), key=lambda c: c["id"])
        if out is None:
            out = pd.DataFrame(False, index=pd.Index(ids, name="nsd_id"), columns=[c["name"] for c in categories])
        names = {c["id"]: c["name"] for c in categories}
        for nsd_id, coco_id, crop in zip(group["nsdId"], group["cocoId"], group["cropBox"], strict=True):
            if coco_id not in coco.imgs:
                raise DatasetFileError(f"{path}: image {coco_id} (NSD image {nsd_id}) is not in the annotations")
            image = coco.imgs[coco_id]
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[coco_id])):
                if visible_fraction(ann["bbox"], crop, image["height"], image["width"]) > min_visible_fraction:
                    out.loc[nsd_id, names[ann["category_id"]]] = True
    if out is None:
        raise ValueError("nsd_ids: no image selected")
    return out
