"""COCO object categories of NSD images, as the subjects saw them (after NSD's crop).

NSD showed a square crop of each COCO image. ``cropBox`` in ``nsd_stim_info_merged.csv``
gives the fractions (top, bottom, left, right) removed from each side, so an object
annotated in COCO may be partly or wholly outside what was shown. An annotation is
*visible* when it keeps more than ``min_visible_fraction`` of its bounding box inside
the crop, and a category counts for an image when one of its annotations is visible.
Needs ``pycocotools`` (``pip install "scene2brain[coco]"``) and COCO 2017
``instances_{train2017,val2017}.json`` (whose ``categories`` give each category's
``supercategory``).

:func:`nsd_coco_categories` gives one boolean column per category;
:func:`nsd_coco_labels` gives the labels a decoder reads (person or not, the
supercategories, the main supercategory).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scene2brain.data.datasets._files import CopyCheck, DatasetFileError, FileCheck, require, require_root


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


def require_pycocotools(what: str) -> type:
    """``pycocotools.coco.COCO``, or an ImportError that says ``what`` needs it and how to install it."""
    try:
        from pycocotools.coco import COCO
    except ImportError as err:
        raise ImportError(
            f"{what} needs pycocotools: pip install 'scene2brain[coco]' (or pip install pycocotools)"
        ) from err
    return COCO


def _visible_annotations(
    stim_info: pd.DataFrame,
    annotations_dir: str | Path,
    nsd_ids: Sequence[int] | np.ndarray | None,
    min_visible_fraction: float,
    what: str,
) -> tuple[np.ndarray, list[dict], list[tuple[int, dict, float]]]:
    """The selected 73k ids, the COCO categories (by id) and every visible annotation.

    Each visible annotation comes as ``(nsd_id, category, visible_area)`` where
    ``visible_area`` is the annotation's ``area`` (its segmentation, in pixels) times the
    share of its bounding box inside the crop.
    """
    COCO = require_pycocotools(what)
    if not 0 <= min_visible_fraction < 1:
        raise ValueError(f"min_visible_fraction: expected a share in [0, 1), got {min_visible_fraction}")
    needed = [c for c in ("nsdId", "cocoId", "cocoSplit", "cropBox") if c not in stim_info.columns]
    if needed:
        raise ValueError(f"stim_info: columns {needed} missing; expected the table of read_stim_info")
    rows = stim_info.set_index("nsdId", drop=False)
    ids = rows.index.to_numpy() if nsd_ids is None else np.asarray(nsd_ids)
    missing = np.setdiff1d(ids, rows.index.to_numpy())
    if len(missing):
        raise ValueError(f"nsd_ids: {len(missing)} ids are not in the stimulus table (first: {missing[0]})")
    if not len(ids):
        raise ValueError("nsd_ids: no image selected")
    rows = rows.loc[ids]
    categories: list[dict] = []
    visible: list[tuple[int, dict, float]] = []
    for split, group in rows.groupby("cocoSplit", sort=True):
        path = require(Path(annotations_dir) / f"instances_{split}.json", f"COCO {split} instance annotations")
        try:
            coco = COCO(str(path))
        except Exception as err:
            raise DatasetFileError(f"{path}: not readable as COCO annotations: {err}") from err
        if not categories:
            categories = sorted(coco.cats.values(), key=lambda c: c["id"])
        for nsd_id, coco_id, crop in zip(group["nsdId"], group["cocoId"], group["cropBox"], strict=True):
            if coco_id not in coco.imgs:
                raise DatasetFileError(f"{path}: image {coco_id} (NSD image {nsd_id}) is not in the annotations")
            image = coco.imgs[coco_id]
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[coco_id])):
                fraction = visible_fraction(ann["bbox"], crop, image["height"], image["width"])
                if fraction > min_visible_fraction:
                    if ann["category_id"] not in coco.cats:
                        raise DatasetFileError(
                            f"{path}: annotation {ann.get('id')} has category_id {ann['category_id']}, "
                            "which is not in its categories"
                        )
                    visible.append((int(nsd_id), coco.cats[ann["category_id"]], float(ann["area"]) * fraction))
    return ids, categories, visible


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
    ids, categories, visible = _visible_annotations(
        stim_info, annotations_dir, nsd_ids, min_visible_fraction, "nsd_coco_categories"
    )
    row = {nsd_id: i for i, nsd_id in enumerate(ids.tolist())}
    column = {c["id"]: j for j, c in enumerate(categories)}
    present = np.zeros((len(ids), len(categories)), dtype=bool)
    for nsd_id, category, _ in visible:
        present[row[nsd_id], column[category["id"]]] = True
    return pd.DataFrame(present, index=pd.Index(ids, name="nsd_id"), columns=[c["name"] for c in categories])


#: Prefix of the boolean supercategory columns of :func:`nsd_coco_labels`.
SUPERCATEGORY_PREFIX = "supercategory_"
#: The ``main_supercategory`` of an image without a visible annotation.
NO_OBJECT = "none"


def nsd_coco_labels(
    stim_info: pd.DataFrame,
    annotations_dir: str | Path,
    nsd_ids: Sequence[int] | np.ndarray | None = None,
    min_visible_fraction: float = 0.0,
) -> pd.DataFrame:
    """Category labels of NSD images for decoding, from the COCO objects visible after the crop.

    Visibility is as in :func:`nsd_coco_categories` (an annotation keeping more than
    ``min_visible_fraction`` of its bounding box inside NSD's crop).

    Parameters
    ----------
    stim_info : DataFrame
        From :func:`scene2brain.data.datasets.nsd.read_stim_info`.
    annotations_dir : path
        Folder with ``instances_train2017.json`` and/or ``instances_val2017.json``.
    nsd_ids : sequence of int, optional
        0-based 73k ids; default every row of ``stim_info``.
    min_visible_fraction : float

    Returns
    -------
    DataFrame
        Indexed by ``nsd_id``, with columns

        - ``has_person`` (bool): a person annotation is visible;
        - ``person`` (str): "person" or "non-person", the same as a label;
        - ``main_supercategory`` (str): the COCO supercategory of the visible annotation
          with the largest visible area, that is its ``area`` (segmentation pixels)
          times the share of its bounding box inside the crop; ties go to the lower
          category id; "none" when nothing annotated is visible;
        - ``supercategory_<name>`` (bool): one per COCO supercategory (in the order of
          their first category id: ``supercategory_person``, ``supercategory_vehicle``,
          ...), true when a category of it is visible.
    """
    ids, categories, visible = _visible_annotations(
        stim_info, annotations_dir, nsd_ids, min_visible_fraction, "nsd_coco_labels"
    )
    lacking = [c.get("name", c["id"]) for c in categories if "supercategory" not in c]
    if lacking:
        raise DatasetFileError(
            f"{annotations_dir}: COCO categories {lacking[:5]} have no 'supercategory'; expected COCO 2017 "
            "instances_*.json, whose categories are {id, name, supercategory}"
        )
    supers = list(dict.fromkeys(str(c["supercategory"]) for c in categories))
    row = {nsd_id: i for i, nsd_id in enumerate(ids.tolist())}
    column = {name: j for j, name in enumerate(supers)}
    present = np.zeros((len(ids), len(supers)), dtype=bool)
    has_person = np.zeros(len(ids), dtype=bool)
    main = np.full(len(ids), NO_OBJECT, dtype=object)
    best: dict[int, tuple[float, int]] = {}  # row -> (largest visible area, minus its category id)
    for nsd_id, category, area in visible:
        i, supercategory = row[nsd_id], str(category["supercategory"])
        present[i, column[supercategory]] = True
        has_person[i] |= category["name"] == "person"
        key = (area, -int(category["id"]))  # the larger area; on a tie, the lower category id
        if i not in best or key > best[i]:
            best[i] = key
            main[i] = supercategory
    out = pd.DataFrame(
        {"has_person": has_person, "person": np.where(has_person, "person", "non-person"), "main_supercategory": main},
        index=pd.Index(ids, name="nsd_id"),
    )
    for name, j in column.items():
        out[SUPERCATEGORY_PREFIX + name] = present[:, j]
    return out


_COCO_KEYS = ("images", "annotations", "categories")


def check_coco_json(path: Path) -> None:
    """A COCO instances file, read in 1 MiB blocks: one JSON object holding "images", "annotations", "categories".

    Reads the whole file without parsing it (bounded memory): it must start with ``{``,
    end with ``}`` (a cut-off copy does not) and name the three top-level keys.
    """
    require(path, "COCO 2017 instance annotations (JSON)")
    found, first, last, tail = set(), "", "", b""
    with open(path, "rb") as fh:
        while block := fh.read(2**20):
            text = tail + block
            found |= {key for key in _COCO_KEYS if f'"{key}"'.encode() in text}
            stripped = block.strip()
            if stripped:
                first = first or chr(stripped[0])
                last = chr(stripped[-1])
            tail = block[-32:]
    if first != "{" or last != "}":
        raise DatasetFileError(
            f"{path}: not a complete JSON object (starts with {first!r}, ends with {last!r}); the copy may be cut off"
        )
    missing = [key for key in _COCO_KEYS if key not in found]
    if missing:
        raise DatasetFileError(f"{path}: keys {missing} missing; expected COCO 2017 instances with {list(_COCO_KEYS)}")


def check_coco(root: str | Path, subject: int | str = 1) -> list[FileCheck]:
    """Check ``instances_train2017.json`` and ``instances_val2017.json`` with :func:`check_coco_json`."""
    check = CopyCheck(require_root(root, "COCO 2017 annotations (instances_train2017.json, instances_val2017.json)"))
    for name in ("instances_train2017.json", "instances_val2017.json"):
        check.file(name, check_coco_json)
    return check.results
