"""Per-vertex maps on the inflated fsaverage surface (nilearn, matplotlib engine).

Values live on voxels whose table gives ``hemisphere`` ("lh"/"rh") and ``vertex`` (the
fsaverage index, 0..163,841; for Algonauts challenge vertices this is the nonzero
position in the all-vertices mask, see
:func:`scene2brain.data.datasets.challenge_to_fsaverage`). They are drawn on full
fsaverage when its FreeSurfer files are in the data home
(``<data home>/fsaverage/surf/{lh,rh}.{inflated,sulc}``), otherwise on nilearn's
bundled fsaverage5. fsaverage is a recursively subdivided icosahedron whose vertices are
appended level by level, so fsaverage5's 10,242 vertices are the first 10,242 of
fsaverage: resampling to fsaverage5 keeps the values of those vertices (decimation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scene2brain.data.datasets.algonauts import N_FSAVERAGE_VERTICES, challenge_to_fsaverage

HEMISPHERES = {"lh": "left", "rh": "right"}
N_FSAVERAGE5_VERTICES = 10_242


@dataclass
class SurfaceMesh:
    """Inflated meshes and sulcal depth of both hemispheres.

    Attributes
    ----------
    name : {"fsaverage", "fsaverage5"}
    meshes : dict
        "lh"/"rh" -> (coordinates, faces) or a nilearn mesh.
    sulc : dict
        "lh"/"rh" -> sulcal depth per vertex (the background shading).
    n_vertices : int
        Vertices per hemisphere.
    """

    name: str
    meshes: dict
    sulc: dict[str, np.ndarray]
    n_vertices: int


def full_fsaverage_dir(data_home: str | Path) -> Path | None:
    """``<data_home>/fsaverage/surf`` when it holds the inflated meshes and sulcal depth of both hemispheres."""
    surf = Path(data_home) / "fsaverage" / "surf"
    needed = [surf / f"{h}.{kind}" for h in HEMISPHERES for kind in ("inflated", "sulc")]
    return surf if all(p.is_file() for p in needed) else None


def load_surface(kind: str = "auto", data_home: str | Path | None = None) -> SurfaceMesh:
    """Inflated fsaverage ("fsaverage", from the data home) or fsaverage5 (bundled with nilearn).

    ``kind="auto"`` takes full fsaverage when present in the data home, else fsaverage5.
    """
    if kind not in ("auto", "fsaverage", "fsaverage5"):
        raise ValueError(f"surface: expected 'auto', 'fsaverage' or 'fsaverage5', got {kind!r}")
    surf = full_fsaverage_dir(data_home) if data_home is not None else None
    if kind == "fsaverage" and surf is None:
        where = Path(data_home or "?") / "fsaverage" / "surf"
        raise FileNotFoundError(
            f"surface 'fsaverage': no {{lh,rh}}.inflated and {{lh,rh}}.sulc in {where}"
            " (copy FreeSurfer's subjects/fsaverage there, or use 'fsaverage5')"
        )
    if surf is not None and kind != "fsaverage5":
        import nibabel.freesurfer as fs

        meshes = {h: fs.read_geometry(surf / f"{h}.inflated") for h in HEMISPHERES}
        sulc = {h: fs.read_morph_data(surf / f"{h}.sulc") for h in HEMISPHERES}
        return SurfaceMesh("fsaverage", meshes, sulc, N_FSAVERAGE_VERTICES)
    from nilearn.datasets import load_fsaverage, load_fsaverage_data

    inflated = load_fsaverage("fsaverage5")["inflated"]
    sulc = load_fsaverage_data(mesh="fsaverage5", mesh_type="inflated", data_type="sulcal")
    meshes = {h: inflated.parts[part] for h, part in HEMISPHERES.items()}
    depth = {h: np.asarray(sulc.data.parts[part]) for h, part in HEMISPHERES.items()}
    return SurfaceMesh("fsaverage5", meshes, depth, N_FSAVERAGE5_VERTICES)


def voxels_to_surface(values: np.ndarray, voxels: pd.DataFrame, n_vertices: int) -> dict[str, np.ndarray]:
    """Per-hemisphere arrays of ``n_vertices`` (fsaverage or fsaverage5) holding each voxel's value.

    Parameters
    ----------
    values : ndarray of shape (n_voxels,)
    voxels : DataFrame
        ``hemisphere`` and ``vertex`` (fsaverage index) per voxel, in the order of ``values``.
    n_vertices : int
        163,842 for fsaverage; 10,242 for fsaverage5 (voxels on other vertices are left out).

    Returns
    -------
    dict
        "lh"/"rh" -> float array, NaN where no voxel lies.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) != len(voxels):
        raise ValueError(f"values: expected one per voxel ({len(voxels)}), got {len(values)}")
    if "vertex" not in voxels or "hemisphere" not in voxels:
        raise ValueError(f"voxels: need 'hemisphere' and 'vertex' columns for surface maps, got {list(voxels.columns)}")
    maps = {}
    for hemi in HEMISPHERES:
        rows = (voxels["hemisphere"] == hemi).to_numpy()
        full = challenge_to_fsaverage(values[rows], voxels["vertex"].to_numpy()[rows])
        maps[hemi] = full[:n_vertices]
    return maps


def figure_surface_map(
    maps: dict[str, np.ndarray],
    surface: SurfaceMesh,
    title: str,
    views: tuple[str, ...] = ("lateral", "medial", "ventral"),
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar_label: str = "",
) -> Figure:
    """Both hemispheres in each view, one colour scale, values over sulcal shading."""
    from matplotlib import cm, colors
    from nilearn import plotting

    finite = np.concatenate([m[np.isfinite(m)] for m in maps.values()])
    if vmin is None:
        vmin = float(finite.min()) if finite.size else 0.0
    if vmax is None:
        vmax = float(finite.max()) if finite.size else 1.0
    if vmax <= vmin:
        vmax = vmin + 1e-6
    fig = Figure(figsize=(2.6 * len(views) + 0.8, 4.6))
    for row, hemi in enumerate(HEMISPHERES):
        for col, view in enumerate(views):
            ax = fig.add_subplot(2, len(views), row * len(views) + col + 1, projection="3d")
            plotting.plot_surf(
                surface.meshes[hemi], surf_map=maps[hemi], bg_map=surface.sulc[hemi], hemi=HEMISPHERES[hemi],
                view=view, cmap=cmap, vmin=vmin, vmax=vmax, axes=ax, figure=fig, colorbar=False,
                engine="matplotlib",
            )  # fmt: skip
            ax.set_title(f"{hemi} {view}", fontsize=8, y=0.92)
            for collection in ax.collections:
                collection.set_rasterized(True)  # keeps the SVG small: the mesh is embedded as an image
    fig.subplots_adjust(left=0, right=0.88, bottom=0, top=0.9, wspace=0, hspace=0)
    mappable = cm.ScalarMappable(colors.Normalize(vmin, vmax), cmap)
    fig.colorbar(mappable, cax=fig.add_axes((0.9, 0.2, 0.015, 0.55)), label=colorbar_label)
    fig.suptitle(f"{title} ({surface.name}, inflated)", fontsize=10)
    return fig
