"""Per-vertex maps on the inflated fsaverage surface (nilearn, matplotlib engine).

Values live on voxels whose table gives ``hemisphere`` ("lh"/"rh") and ``vertex`` (the
fsaverage index, 0..163,841; for Algonauts challenge vertices this is the nonzero
position in the all-vertices mask, see
:func:`scene2brain.data.fsaverage.challenge_to_fsaverage`). The meshes come from
:func:`scene2brain.data.fsaverage.load_surface`: full fsaverage when a copy is in the
data home, otherwise nilearn's bundled fsaverage5, whose 10,242 vertices are the first
10,242 of fsaverage, so cutting a map to them keeps those vertices' values (decimation).
This module only draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scene2brain.data.fsaverage import (
    HEMISPHERES,
    SIDES,
    SurfaceMesh,
    challenge_to_fsaverage,
)


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
                surface.meshes[hemi], surf_map=maps[hemi], bg_map=surface.sulc[hemi], hemi=SIDES[hemi],
                view=view, cmap=cmap, vmin=vmin, vmax=vmax, axes=ax, figure=fig, colorbar=False,
                engine="matplotlib",
            )  # fmt: skip
            ax.set_title(f"{hemi} {view}", fontsize=8, y=0.92)
            for collection in ax.collections:
                collection.set_rasterized(True)  # keeps the SVG small: the mesh is embedded as an image
    fig.subplots_adjust(left=0, right=0.88, bottom=0, top=0.9, wspace=0, hspace=0)
    mappable = cm.ScalarMappable(colors.Normalize(vmin, vmax), cmap)
    fig.colorbar(mappable, cax=fig.add_axes((0.9, 0.2, 0.015, 0.55)), label=colorbar_label)
    fig.suptitle(f"{title} ({surface.name}, {surface.mesh_type})", fontsize=10)
    return fig
