"""A simulated fMRI experiment built from photographs that ship with installed packages.

Two steps, both seeded:

1. :func:`make_stimuli` cuts crops at several positions and scales out of the
   photographs bundled with scikit-image and scikit-learn, adds the face and
   non-face images of scikit-image's LFW subset (for a category), resizes all to a
   common size and draws the train/test split.
2. :func:`simulate_responses` creates a subject whose voxels have known tuning,
   given the *drivers* of that tuning as arrays (this layer knows no models):

   - ``EV`` (early visual): Gabor-energy population receptive fields, each with a
     position, size, preferred orientation and spatial frequency, and a compressive
     output exponent;
   - ``HV`` (higher visual): nonlinear in deep-network features: every voxel mixes
     :data:`HV_FEATURES` nonlinear features of the calibration space (the driver layer's
     principal components) that all HV voxels share (population responses are
     low-dimensional), so no linear model of those features reaches their ceiling and a
     model that learns the shared nonlinearity can beat voxelwise ridge there, while the
     ``CAL`` voxels of the same space are exactly linear;
   - ``FACE``: category-selective voxels (faces vs everything else);
   - ``CAL`` (calibration): responses exactly linear in a given feature space;
   - ``BLIND`` (category-blind): reliable, stimulus-specific responses that owe nothing
     to the images: random per-stimulus latent factors (drawn from the seeded
     generator) mixed linearly into the voxels. They have a noise ceiling like any
     other ROI but carry no category information and no feature space predicts
     them: the negative control of decoding and encoding analyses;
   - ``SPARSE``: sparse non-negative mixtures of :data:`SPARSE_FACTORS` known latent
     factors, each a sparse non-negative function of image content (active on a
     minority of stimuli, not the face label); every voxel loads on one or two factors.
     The ground truth of sparse dictionary learning: the loadings are in the voxel
     table (``sparse_factor_k``), the factors' activations in the experiment's stimulus
     table (``sparse_factor_k``); see :func:`simulate_responses`.

   Trials carry Gaussian noise with a per-voxel SNR drawn from a log-normal law
   (many weak voxels, a few strong ones). Test stimuli are shown ``test_repeats``
   times and training stimuli ``train_repeats`` times, so the noise ceiling is both
   known (stored in the voxel table) and estimable from the repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment, Responses, Stimuli
from scene2brain.data.images import ImageSource, to_rgb
from scene2brain.utils.arrays import standardise_columns

ROIS = ("EV", "HV", "FACE", "CAL", "BLIND", "SPARSE")

#: A coarse semantic class for each bundled photograph (the ``coarse_class`` column of
#: :func:`make_stimuli`; LFW images are "face" or "nonface"), chosen from what each shows.
PHOTO_CLASSES = {
    "astronaut": "person",  # Eileen Collins in a spacesuit
    "camera": "person",  # the cameraman
    "chelsea": "animal",  # a cat's face
    "coffee": "object",  # a cup of coffee
    "clock": "object",  # a (motion-blurred) wall clock
    "coins": "object",  # old coins on a dark background
    "rocket": "vehicle",  # a rocket on its launch pad
    "motorcycle": "vehicle",  # a motorcycle in a garage
    "china": "building",  # a pagoda (scikit-learn sample)
    "flower": "plant",  # a dahlia (scikit-learn sample)
    "brick": "texture",  # a brick wall
    "grass": "texture",
    "gravel": "texture",
    "hubble_deep_field": "astronomy",  # galaxies
    "moon": "astronomy",  # the lunar surface
    "immunohistochemistry": "biomedical",  # a stained tissue section (microscopy)
    "retina": "biomedical",  # a fundus photograph of a retina
    "page": "text",  # a printed page
    "text": "text",  # handwritten equations
}


def photographs() -> dict[str, np.ndarray]:
    """The natural photographs bundled with scikit-image and scikit-learn, as uint8 RGB."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = [
        "astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
        "retina", "moon", "brick", "grass", "gravel", "coins", "clock", "page", "text",
    ]  # fmt: skip
    photos = {name: getattr(data, name)() for name in names}
    photos["motorcycle"] = data.stereo_motorcycle()[0]
    sample = load_sample_images()
    for fname, img in zip(sample.filenames, sample.images, strict=True):
        photos[fname.rsplit("/", 1)[-1].split(".")[0]] = img
    return {name: to_rgb(img, f"photograph {name!r}") for name, img in photos.items()}


def make_stimuli(
    n_stimuli: int = 1200,
    n_test: int | None = None,
    image_size: int = 128,
    n_faces: int | None = None,
    seed: int = 0,
) -> tuple[Stimuli, dict[str, np.ndarray]]:
    """Build the stimulus set and its train/test split, with a novel test set.

    The split is drawn by source image: the test crops are cut from photographs that
    no training crop comes from, and the test LFW images are other images than the
    training ones, so no test stimulus shares pixels with a training stimulus. (Crops of
    one photograph overlap and share its content; a random split of crops would put
    near-copies of test images in the training set and inflate every test score.)

    Parameters
    ----------
    n_stimuli : int
        Total number of stimuli (crops + LFW images).
    n_test : int, optional
        Test stimuli; default one sixth of ``n_stimuli``.
    image_size : int
        Side of the square RGB images.
    n_faces : int, optional
        LFW images used (half faces, half non-faces); default ``min(200, n_stimuli // 6)``.
    seed : int

    Returns
    -------
    stimuli : Stimuli
        Table columns: stimulus_id, source (photograph name or "lfw"), category ("face",
        "nonface", "photo"), is_face, crop_x, crop_y, crop_size (in source pixels; -1
        for LFW), split, group (the source photograph for crops, the image for LFW: what
        cross-validation folds must keep together), and two label columns for decoding:
        ``face`` ("face" for LFW faces, "nonface" for everything else: the label that
        the FACE voxels respond to; crops of "astronaut" and "camera" may show a face
        but are "nonface", as ``is_face`` says) and ``coarse_class`` (the photograph's
        class from :data:`PHOTO_CLASSES` for crops, "face" or "nonface" for LFW images).
    splits : dict
        ``{"train": ..., "test": ...}`` stimulus positions.
    """
    from PIL import Image
    from skimage.data import lfw_subset

    rng = np.random.default_rng(seed)
    n_faces = min(200, n_stimuli // 6) if n_faces is None else n_faces
    n_faces -= n_faces % 2
    n_crops = n_stimuli - n_faces
    if n_crops < 2 or n_faces < 0 or n_faces > 200:
        raise ValueError(f"n_stimuli={n_stimuli}, n_faces={n_faces}: need 0 <= n_faces <= 200 and at least two crops")
    n_test = n_stimuli // 6 if n_test is None else n_test
    if not 1 <= n_test < n_stimuli:
        raise ValueError(f"n_test: expected between 1 and n_stimuli - 1 = {n_stimuli - 1}, got {n_test}")
    # test LFW images in proportion (an even number, half faces), the rest of the test set are crops
    n_test_faces = min(n_faces, 2 * round(n_test * n_faces / n_stimuli / 2))
    n_test_crops = n_test - n_test_faces
    if not 1 <= n_test_crops < n_crops:
        raise ValueError(f"n_test={n_test}: leaves {n_test_crops} test crops of {n_crops}; need at least one of each")

    photos = photographs()
    unclassed = sorted(set(photos) - set(PHOTO_CLASSES))
    if unclassed:
        raise ValueError(f"photographs {unclassed} have no coarse class: add them to PHOTO_CLASSES")
    names = [str(n) for n in rng.permutation(sorted(photos))]
    # as many test photographs as the test crops' share of the crops (at least one, and one left for training)
    n_test_photos = int(np.clip(round(len(names) * n_test_crops / n_crops), 1, len(names) - 1))
    test_photos, train_photos = names[:n_test_photos], names[n_test_photos:]
    crop_sources = [train_photos[i % len(train_photos)] for i in range(n_crops - n_test_crops)]
    crop_sources += [test_photos[i % len(test_photos)] for i in range(n_test_crops)]
    images = np.empty((n_stimuli, image_size, image_size, 3), dtype=np.uint8)
    rows = []
    scales = (0.25, 0.4, 0.6, 0.85)
    for i, name in enumerate(crop_sources):
        photo = photos[name]
        h, w = photo.shape[:2]
        side = round(float(scales[rng.integers(len(scales))]) * min(h, w))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        pil = Image.fromarray(photo).resize(
            (image_size, image_size), Image.Resampling.LANCZOS, box=(x0, y0, x0 + side, y0 + side)
        )
        images[i] = np.asarray(pil)
        rows.append((name, "photo", False, x0, y0, side))
    test = list(range(n_crops - n_test_crops, n_crops))
    if n_faces:
        lfw = lfw_subset()  # 100 faces then 100 non-faces, 25 x 25, float in [0, 1]
        faces, others = rng.choice(100, n_faces // 2, replace=False), 100 + rng.choice(100, n_faces // 2, replace=False)
        picks = np.concatenate([faces, others])
        half = n_test_faces // 2
        test_picks = {*faces[:half].tolist(), *others[:half].tolist()}
        for j, k in enumerate(picks):
            gray = Image.fromarray(np.round(lfw[k] * 255).astype(np.uint8))
            gray = gray.resize((image_size, image_size), Image.Resampling.BICUBIC)
            images[n_crops + j] = np.repeat(np.asarray(gray)[..., None], 3, axis=2)
            face = bool(k < 100)
            rows.append(("lfw", "face" if face else "nonface", face, -1, -1, -1))
            if int(k) in test_picks:
                test.append(n_crops + j)
    table = pd.DataFrame(rows, columns=["source", "category", "is_face", "crop_x", "crop_y", "crop_size"])
    table.insert(0, "stimulus_id", [f"sim-{i:05d}" for i in range(n_stimuli)])
    table["face"] = np.where(table["is_face"], "face", "nonface")
    table["coarse_class"] = np.where(table["source"] == "lfw", table["category"], table["source"].map(PHOTO_CLASSES))
    # stimuli that share content (crops of one photograph) form a group: CV folds keep a group together
    table["group"] = np.where(table["source"] == "lfw", table["stimulus_id"], table["source"])
    test = np.sort(np.asarray(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(n_stimuli), test)
    table["split"] = "train"
    table.loc[test, "split"] = "test"
    return Stimuli(table, images), {"train": train, "test": test}


def stimuli_from_images(
    source: ImageSource,
    names: list[str] | None = None,
    image_size: int = 128,
    n_test: int | None = None,
    test_names: list[str] | None = None,
    seed: int = 0,
) -> tuple[Stimuli, dict[str, np.ndarray]]:
    """A stimulus set from the user's images: any sizes, grayscale or colour, squared and resized.

    Each image is converted to RGB by :func:`~scene2brain.data.images.to_rgb` (the one
    image reader: palette, CMYK, grey + alpha and RGBA composited onto white, 16-bit,
    floating point in [0, 1]; files are read by :func:`~scene2brain.data.images.read_image`,
    which also applies the EXIF orientation), centre-cropped to a square and resized to
    ``image_size`` (Lanczos). The test split is ``test_names`` (image names) when given,
    else ``n_test`` images drawn at random (default one sixth).

    Parameters
    ----------
    source : ImageSource
    names : list of str, optional
        A name per image (file names); default ``image-00000``, ...
    image_size : int
    n_test : int, optional
    test_names : list of str, optional
    seed : int

    Returns
    -------
    stimuli : Stimuli
        Table columns: stimulus_id, source (the image's name), category ("image"),
        is_face (False: unknown), split.
    splits : dict
    """
    from PIL import Image

    n = len(source)
    names = names if names is not None else [f"image-{i:05d}" for i in range(n)]
    if len(names) != n or len(set(names)) != n:
        raise ValueError(f"names: expected {n} distinct names (one per image), got {len(set(names))} of {len(names)}")
    if test_names is not None:
        unknown = sorted(set(test_names) - set(names))
        if unknown:
            raise ValueError(f"test_names: {len(unknown)} names are not images of the set (first: {unknown[0]!r})")
        test = np.flatnonzero(np.isin(names, list(test_names)))
    else:
        n_test = n // 6 if n_test is None else n_test
        if not 1 <= n_test < n:
            raise ValueError(f"n_test: expected between 1 and {n - 1} for {n} images, got {n_test}")
        test = np.sort(np.random.default_rng(seed).choice(n, n_test, replace=False))
    if not 1 <= len(test) < n:
        raise ValueError(f"test split: {len(test)} of {n} images; need at least one test and one training image")
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    for i in range(n):
        img = Image.fromarray(to_rgb(source[i], names[i]))  # the one image reader's RGB (16-bit, alpha, ...)
        side = min(img.size)
        left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
        img = img.crop((left, top, left + side, top + side))
        images[i] = np.asarray(img.resize((image_size, image_size), Image.Resampling.LANCZOS))
    table = pd.DataFrame({"stimulus_id": list(names), "source": list(names), "category": "image", "is_face": False})
    train = np.setdiff1d(np.arange(n), test)
    table["split"] = "train"
    table.loc[test, "split"] = "test"
    return Stimuli(table, images), {"train": train, "test": test}


@dataclass
class SimulationDrivers:
    """What drives each simulated ROI, as arrays over the stimuli (same order).

    Attributes
    ----------
    gabor_energy : ndarray (n_stimuli, n_channels)
        Gabor contrast energies.
    gabor_channels : DataFrame
        Channel table (kind, frequency, orientation, x, y) of ``gabor_energy``.
    deep : ndarray (n_stimuli, n_deep)
        Deep-network features driving the HV and FACE voxels.
    calibration : ndarray (n_stimuli, n_cal)
        Feature space in which the CAL voxels are exactly linear.
    is_face : ndarray (n_stimuli,) of bool
    names : dict
        Names of the feature spaces behind ``deep`` and ``calibration`` (recorded
        in the voxel table's ``driver`` column).
    """

    gabor_energy: np.ndarray
    gabor_channels: pd.DataFrame
    deep: np.ndarray
    calibration: np.ndarray
    is_face: np.ndarray
    names: dict[str, str] = field(default_factory=lambda: {"deep": "deep", "calibration": "calibration"})


@dataclass
class SubjectConfig:
    """Voxel counts per ROI and SNR laws (median ncsnr, log-SD) per ROI."""

    n_voxels: dict[str, int] = field(
        default_factory=lambda: {"EV": 800, "HV": 600, "FACE": 300, "CAL": 300, "BLIND": 300, "SPARSE": 200}
    )
    ncsnr_median: dict[str, float] = field(
        default_factory=lambda: {"EV": 0.6, "HV": 0.5, "FACE": 0.6, "CAL": 1.2, "BLIND": 0.6, "SPARSE": 1.0}
    )
    ncsnr_log_sd: float = 0.5
    train_repeats: int = 1
    test_repeats: int = 3

    @classmethod
    def scaled(cls, n_voxels: int, without: tuple[str, ...] = ()) -> SubjectConfig:
        """Default proportions (EV:HV:FACE:CAL:BLIND:SPARSE = 8:6:3:3:3:2) scaled to ``n_voxels`` voxels in total.

        The counts add up to ``n_voxels`` exactly (largest remainders; every ROI keeps
        at least one voxel, so fewer voxels than ROIs still give one each).

        ``without`` names ROIs to leave out (``("FACE",)`` for stimuli without face labels).
        """
        base = cls()
        unknown = sorted(set(without) - set(base.n_voxels))
        if unknown:
            raise ValueError(f"without: {unknown} are not simulated ROIs; expected some of {tuple(base.n_voxels)}")
        kept = {roi: k for roi, k in base.n_voxels.items() if roi not in without}
        total = sum(kept.values())
        # largest remainders: the counts add up to n_voxels exactly (at least one voxel per ROI)
        shares = {roi: k * n_voxels / total for roi, k in kept.items()}
        counts = {roi: int(np.floor(share)) for roi, share in shares.items()}
        by_remainder = sorted(kept, key=lambda roi: (counts[roi] - shares[roi], list(kept).index(roi)))
        for roi in by_remainder[: n_voxels - sum(counts.values())]:
            counts[roi] += 1
        for roi in [r for r, k in counts.items() if k == 0]:  # an empty ROI takes a voxel from the largest
            largest = max(counts, key=lambda r: counts[r])
            if counts[largest] > 1:
                counts[largest] -= 1
            counts[roi] = 1
        base.n_voxels = counts
        return base


def _ev_voxels(drivers: SimulationDrivers, n: int, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    ch = drivers.gabor_channels
    gabor = (ch["kind"] == "gabor").to_numpy()
    energy = drivers.gabor_energy[:, gabor].astype(np.float64)
    energy = energy / energy.mean(axis=0).clip(1e-12)
    cx, cy = ch["x"].to_numpy()[gabor], ch["y"].to_numpy()[gabor]
    cf, co = ch["frequency"].to_numpy()[gabor], ch["orientation"].to_numpy()[gabor]
    freqs = np.unique(cf)
    params = pd.DataFrame(
        {
            "prf_x": rng.uniform(0.2, 0.8, n),
            "prf_y": rng.uniform(0.2, 0.8, n),
            "prf_size": rng.uniform(0.05, 0.2, n),
            "pref_orientation": rng.uniform(0, np.pi, n),
            "pref_frequency": 2.0 ** rng.uniform(np.log2(freqs[min(1, len(freqs) - 1)]), np.log2(freqs[-1]), n),
            "exponent": rng.uniform(0.3, 0.7, n),
        }
    )
    p = {k: v.to_numpy()[None, :] for k, v in params.items()}
    spatial = np.exp(-((cx[:, None] - p["prf_x"]) ** 2 + (cy[:, None] - p["prf_y"]) ** 2) / (2 * p["prf_size"] ** 2))
    orient = np.exp(2.0 * (np.cos(2 * (co[:, None] - p["pref_orientation"])) - 1))
    freq = np.exp(-((np.log2(cf[:, None]) - np.log2(p["pref_frequency"])) ** 2) / (2 * 0.5**2))
    weights = spatial * orient * freq
    weights /= weights.sum(axis=0, keepdims=True)
    drive = energy @ weights
    return drive ** p["exponent"], params


def _mixture(z: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Nonlinear mixtures of standardised features: softplus of one projection plus a squared second one."""
    d = z.shape[1]
    a = rng.standard_normal((d, n)) / np.sqrt(d)
    b = rng.standard_normal((d, n)) / np.sqrt(d)
    u, v = standardise_columns(z @ a), standardise_columns(z @ b)
    return np.logaddexp(0, 2 * u) + 0.3 * v**2


#: Nonlinear features of the calibration space that every HV voxel mixes (linearly, with Gaussian weights).
HV_FEATURES = 16


def _shared_nonlinear(z: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Voxels mixing :data:`HV_FEATURES` nonlinear features of ``z`` (each one a :func:`_mixture`) shared by all."""
    return _mixture(z, HV_FEATURES, rng) @ rng.standard_normal((HV_FEATURES, n))


ROI_ORDER = ("EV", "HV", "FACE", "CAL", "BLIND", "SPARSE")
#: Latent factors behind the BLIND voxels (per stimulus, independent of the images).
BLIND_FACTORS = 16
#: Latent factors behind the SPARSE voxels (sparse, non-negative, driven by image content).
SPARSE_FACTORS = 8
#: Each SPARSE factor is the part of its drive above this quantile (over the stimuli): active on 10% of them.
SPARSE_QUANTILE = 0.9
#: The SPARSE factors' drives are directions in this many whitened components of the deep features ...
SPARSE_COMPONENTS = 32
#: ... chosen greedily among this many random ones so that the factors overlap little (the stimuli are crops of a
#: few photographs, so two random directions' tails often pick the same photograph's crops).
SPARSE_CANDIDATES = 64
#: Share of each SPARSE factor's drive that is common to all of them (before rectification): natural image
#: content co-occurs, so the factors are correlated (about 0.3 here) - sparse, non-negative, not independent.
SPARSE_SHARED = 0.5
#: Share of SPARSE voxels that load on a second factor (the others load on one).
SPARSE_SECOND = 0.5
#: Spawn key of the SPARSE ROI's own generator (``default_rng([seed, SPARSE_STREAM])``): the other ROIs'
#: draws do not depend on whether or how many SPARSE voxels are simulated.
SPARSE_STREAM = 19


def _sparse_factors(deep_z: np.ndarray, is_face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sparse non-negative factors of image content, correlated as content is, not the face label.

    The standardised deep features are residualised on the face label (so no factor's
    drive is linearly related to it) and whitened (the first :data:`SPARSE_COMPONENTS`
    principal components, unit variance). A candidate factor is the rectified part above
    its :data:`SPARSE_QUANTILE` quantile of the projection on a random direction of that
    space; of :data:`SPARSE_CANDIDATES` candidates, :data:`SPARSE_FACTORS` are chosen
    greedily (each the candidate least correlated with those already chosen, so no two are
    near-copies). Each chosen factor's drive then takes a share :data:`SPARSE_SHARED` of one
    common direction (``sqrt(1 - s) own + sqrt(s) common``) before it is rectified above its
    quantile and scaled to unit SD: the factors co-occur (correlation about 0.3), as features
    of natural images do, which is what a sparse dictionary can separate and independent
    component analysis, which assumes independence, cannot.
    """
    n = len(deep_z)
    centred = deep_z - deep_z.mean(axis=0)
    face = is_face.astype(np.float64) - is_face.mean()
    if face @ face > 0:
        centred = centred - np.outer(face, face @ centred / (face @ face))
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    m = max(1, min(SPARSE_COMPONENTS, int((s > s[0] * 1e-10).sum())))
    white = u[:, :m] * np.sqrt(n)
    directions = rng.standard_normal((m, max(SPARSE_CANDIDATES, SPARSE_FACTORS) + 1))
    drive = white @ (directions / np.linalg.norm(directions, axis=0))
    common, drive = drive[:, -1:], drive[:, :-1]

    def rectify(d: np.ndarray) -> np.ndarray:
        part = np.maximum(d - np.quantile(d, SPARSE_QUANTILE, axis=0), 0.0)
        sd = part.std(axis=0)
        return part / np.where(sd > 0, sd, 1.0)

    candidates = rectify(drive)
    overlap = np.abs(candidates.T @ standardise_columns(candidates)) / n  # |correlation| (0 for a constant one)
    chosen = [0]
    while len(chosen) < SPARSE_FACTORS:
        worst = overlap[:, chosen].max(axis=1)
        worst[chosen] = np.inf
        chosen.append(int(np.argmin(worst)))
    return rectify(np.sqrt(1 - SPARSE_SHARED) * drive[:, chosen] + np.sqrt(SPARSE_SHARED) * common)


def _sparse_loadings(n: int, rng: np.random.Generator) -> np.ndarray:
    """Non-negative loadings (SPARSE_FACTORS, n): each voxel on one factor (balanced), some on a second, weaker one."""
    loadings = np.zeros((SPARSE_FACTORS, n))
    voxel = np.arange(n)
    primary = rng.permutation(n) % SPARSE_FACTORS
    loadings[primary, voxel] = rng.uniform(0.5, 1.0, n)
    second = rng.random(n) < SPARSE_SECOND
    other = (primary + rng.integers(1, max(SPARSE_FACTORS, 2), n)) % SPARSE_FACTORS
    loadings[other[second], voxel[second]] = rng.uniform(0.2, 0.5, int(second.sum()))
    return loadings


def place_on_fsaverage5(roi: np.ndarray, hemisphere: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """Give simulated voxels fsaverage vertices, early ROIs at the occipital pole.

    Within each hemisphere the vertices of fsaverage5 (which are the first 10,242
    vertices of fsaverage, so the indices are valid on both meshes) are ordered from
    posterior to anterior on the inflated surface; EV takes the most posterior band,
    then HV, FACE, CAL, BLIND and SPARSE, each voxel a random vertex of its band. Returns None
    when a hemisphere has more voxels than fsaverage5 has vertices. (SPARSE draws from a
    generator of its own, so adding SPARSE voxels leaves the other ROIs' vertices unchanged.)
    """
    from nilearn.datasets import load_fsaverage

    inflated = load_fsaverage("fsaverage5")["inflated"]
    rng = np.random.default_rng([seed, 5])
    own = {"SPARSE": np.random.default_rng([seed, 5, SPARSE_STREAM])}
    order = {name: i for i, name in enumerate(ROI_ORDER)}
    vertex = np.full(len(roi), -1, dtype=np.int64)
    for hemi, part in (("lh", "left"), ("rh", "right")):
        rows = np.flatnonzero(hemisphere == hemi)
        coordinates = inflated.parts[part].coordinates
        if len(rows) > len(coordinates):
            return None
        posterior_first = np.argsort(coordinates[:, 1], kind="stable")[: len(rows)]
        rows = rows[np.argsort([order.get(r, len(order)) for r in roi[rows]], kind="stable")]
        start = 0
        for name in dict.fromkeys(roi[rows]):
            band = rows[roi[rows] == name]
            vertex[band] = own.get(name, rng).permutation(posterior_first[start : start + len(band)])
            start += len(band)
    return vertex


def simulate_responses(
    stimuli: Stimuli,
    splits: dict[str, np.ndarray],
    drivers: SimulationDrivers,
    config: SubjectConfig | None = None,
    seed: int = 0,
    subject: str = "sim01",
) -> Experiment:
    """Simulate a subject's single-trial responses to ``stimuli``.

    Parameters
    ----------
    stimuli : Stimuli
    splits : dict
        Must hold "train" and "test" stimulus positions.
    drivers : SimulationDrivers
        Arrays over all stimuli that define the voxels' tuning.
    config : SubjectConfig, optional
    seed : int
    subject : str

    Returns
    -------
    Experiment
        Its voxel table holds the ground truth: ``roi``, ``hemisphere``, ``vertex``
        (see :func:`place_on_fsaverage5`), ``driver`` (the feature space behind the
        voxel; "category:face" for FACE, "none" for BLIND), ``true_ncsnr`` (signal SD
        over all stimuli / noise SD), ``true_ncsnr_test`` and ``true_noise_ceiling``
        (over the test stimuli, for the test split's repeats) and, for EV voxels, the
        pRF parameters.
        With SPARSE voxels, the voxel table's ``sparse_factor_0`` ... ``sparse_factor_{K-1}``
        (``K =`` :data:`SPARSE_FACTORS`) hold each voxel's non-negative loading on each
        factor (0 outside SPARSE) **in response units**, and the experiment's stimulus
        table gains columns of the same names with each factor's non-negative, sparse
        activation per stimulus (``F``, shape (n_stimuli, K)). The noise-free signal of
        the SPARSE voxels is then exactly ``(F - F.mean(axis=0)) @ L`` with ``L`` the
        loadings of those voxels (K, n_sparse): responses are centred over all stimuli
        like every simulated voxel, so the factors' means are subtracted; row ``k`` of
        ``L`` (over all voxels) is factor ``k``'s true voxel pattern. The SPARSE voxels
        come last and draw all their randomness (factors, loadings, SNR, hemisphere,
        noise) from a generator of their own, so the other ROIs' numbers do not depend
        on them.
        ``metadata["simulation"]`` records the settings.
    """
    config = config or SubjectConfig()
    rng = np.random.default_rng(seed)
    n_stim = len(stimuli)
    for name, arr in (
        ("gabor_energy", drivers.gabor_energy),
        ("deep", drivers.deep),
        ("calibration", drivers.calibration),
    ):
        if len(arr) != n_stim:
            raise ValueError(f"drivers.{name}: expected {n_stim} rows (one per stimulus), got {len(arr)}")
    if len(drivers.is_face) != n_stim:
        raise ValueError(f"drivers.is_face: expected {n_stim} entries, got {len(drivers.is_face)}")
    missing = {"train", "test"} - set(splits)
    if missing:
        raise ValueError(f"splits: missing {sorted(missing)}")
    unknown = sorted(set(config.n_voxels) - set(ROIS))
    if unknown:
        raise ValueError(f"config.n_voxels: {unknown} are not simulated ROIs; expected some of {ROIS}")
    no_law = sorted(roi for roi, k in config.n_voxels.items() if k and roi not in config.ncsnr_median)
    if no_law:
        raise ValueError(f"config.ncsnr_median: no median ncsnr for ROIs {no_law} (they have voxels)")

    signals, tables = [], []
    counts = config.n_voxels
    if counts.get("EV", 0):
        sig, params = _ev_voxels(drivers, counts["EV"], rng)
        signals.append(sig)
        tables.append(params.assign(roi="EV", driver="gabor"))
    deep_z = standardise_columns(drivers.deep.astype(np.float64))
    if counts.get("HV", 0):
        calibration_z = standardise_columns(drivers.calibration.astype(np.float64))
        signals.append(_shared_nonlinear(calibration_z, counts["HV"], rng))
        tables.append(pd.DataFrame({"roi": ["HV"] * counts["HV"], "driver": drivers.names["calibration"]}))
    if counts.get("FACE", 0):
        face = drivers.is_face.astype(np.float64)[:, None]
        signals.append(2.0 * face + 0.5 * standardise_columns(_mixture(deep_z, counts["FACE"], rng)))
        tables.append(pd.DataFrame({"roi": ["FACE"] * counts["FACE"], "driver": "category:face"}))
    if counts.get("CAL", 0):
        # Exactly linear in the calibration space, every column weighted after z-scoring: when that space
        # is not whitened (PCA scores), the weak components carry as much signal as the strong ones, so a
        # wrong regularisation (too strong, shrinking the weak ones) costs accuracy.
        cal = standardise_columns(drivers.calibration.astype(np.float64))
        signals.append(cal @ rng.standard_normal((cal.shape[1], counts["CAL"])))
        tables.append(pd.DataFrame({"roi": ["CAL"] * counts["CAL"], "driver": drivers.names["calibration"]}))
    if counts.get("BLIND", 0):
        # Category-blind: latent factors drawn per stimulus from the seeded generator, never from the images
        # or the drivers, mixed linearly into the voxels. Reliable (the same signal on every repeat, so a
        # noise ceiling like the others) but independent of the content: nothing to decode, nothing to predict.
        latent = rng.standard_normal((n_stim, BLIND_FACTORS))
        signals.append(latent @ rng.standard_normal((BLIND_FACTORS, counts["BLIND"])))
        tables.append(pd.DataFrame({"roi": ["BLIND"] * counts["BLIND"], "driver": "none"}))
    n_sparse = counts.get("SPARSE", 0)
    sparse_rng = np.random.default_rng([seed, SPARSE_STREAM])
    if n_sparse:
        # Sparse non-negative factors of image content, mixed non-negatively (one or two factors per voxel);
        # the loadings are rescaled by the voxel's signal SD so that they hold in response units.
        factors = _sparse_factors(deep_z, np.asarray(drivers.is_face, dtype=bool), sparse_rng)
        loadings = _sparse_loadings(n_sparse, sparse_rng)
        raw = factors @ loadings
        loadings = loadings / np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
        signals.append(raw)
        tables.append(pd.DataFrame({"roi": ["SPARSE"] * n_sparse, "driver": drivers.names["deep"]}))
    signal = standardise_columns(np.concatenate(signals, axis=1))
    voxels = pd.concat(tables, ignore_index=True)
    n_vox = signal.shape[1]
    n_main = n_vox - n_sparse  # the other ROIs' voxels: their draws come from rng, as without SPARSE

    median = voxels["roi"].map(config.ncsnr_median).to_numpy(dtype=np.float64)
    log_ncsnr = np.concatenate([rng.standard_normal(n_main), sparse_rng.standard_normal(n_sparse)])
    ncsnr = median * np.exp(config.ncsnr_log_sd * log_ncsnr)
    left = np.concatenate([rng.random(n_main), sparse_rng.random(n_sparse)]) < 0.5
    voxels.insert(1, "hemisphere", np.where(left, "lh", "rh"))
    vertices = place_on_fsaverage5(voxels["roi"].to_numpy(), voxels["hemisphere"].to_numpy(), seed)
    if vertices is not None:
        voxels.insert(2, "vertex", vertices)
    voxels["true_ncsnr"] = ncsnr
    # The ceiling of the test split: its stimuli's own signal variance (a test set less varied than the whole
    # set has a lower ceiling), with the noise of every trial, over the test repeats' mean.
    test_ncsnr = ncsnr * signal[splits["test"]].std(axis=0)
    voxels["true_ncsnr_test"] = test_ncsnr
    voxels["true_noise_ceiling"] = test_ncsnr**2 / (test_ncsnr**2 + 1.0 / config.test_repeats)
    front = [c for c in ("roi", "hemisphere", "vertex") if c in voxels]
    front += ["driver", "true_ncsnr", "true_ncsnr_test", "true_noise_ceiling"]
    voxels = voxels[front + [c for c in voxels.columns if c not in front]]
    if n_sparse:
        for k in range(SPARSE_FACTORS):
            voxels[f"sparse_factor_{k}"] = np.concatenate([np.zeros(n_main), loadings[k]])
        table = stimuli.table.assign(**{f"sparse_factor_{k}": factors[:, k] for k in range(SPARSE_FACTORS)})
        stimuli = Stimuli(table, stimuli.images)

    trial_stimulus = np.concatenate(
        [np.repeat(splits["train"], config.train_repeats), np.repeat(splits["test"], config.test_repeats)]
    )
    trial_stimulus = trial_stimulus[rng.permutation(len(trial_stimulus))]
    n_trials = len(trial_stimulus)
    noise = np.hstack([rng.standard_normal((n_trials, n_main)), sparse_rng.standard_normal((n_trials, n_sparse))])
    noise /= ncsnr
    data = (signal[trial_stimulus] + noise).astype(np.float32)
    metadata = {
        "dataset": "simulated",
        "seed": seed,
        "simulation": {
            "n_voxels": dict(counts),
            "ncsnr_median": dict(config.ncsnr_median),
            "ncsnr_log_sd": config.ncsnr_log_sd,
            "train_repeats": config.train_repeats,
            "test_repeats": config.test_repeats,
            "drivers": dict(drivers.names),
        },
    }
    return Experiment(subject, stimuli, Responses(data, trial_stimulus, voxels), splits, metadata)
