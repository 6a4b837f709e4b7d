"""fsaverage: vertex counts, hemispheres, challenge <-> fsaverage maps and the surface meshes.

fsaverage (FreeSurfer's average subject, also called fsaverage7) has 163,842 vertices per
hemisphere. It is a recursively subdivided icosahedron whose vertices are appended level by
level, so fsaverage5's 10,242 vertices are the first 10,242 of fsaverage: a map over
fsaverage cut to its first 10,242 entries is the same map on fsaverage5 (decimation).

Where the meshes come from (:func:`load_surface`):

- fsaverage5 ships with nilearn, so it is there offline.
- Full fsaverage is read from ``<data home>/fsaverage`` (see
  :func:`scene2brain.data.home.data_home`), laid out either as FreeSurfer's subject folder
  (``surf/lh.inflated``, ``surf/lh.pial``, ``surf/lh.sulc`` ..., or the same names with
  ``.gii``) or as nilearn's GIFTI files (``infl_left.gii.gz``, ``pial_left.gii.gz``,
  ``sulc_left.gii.gz`` ..., or ``.gii``). A copy placed there by hand is used as it is;
  without one, nilearn downloads its copy there
  (``nilearn.datasets.fetch_surf_fsaverage("fsaverage", data_dir=<data home>)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scene2brain.data.home import data_home as resolve_data_home

N_FSAVERAGE_VERTICES = 163_842
N_FSAVERAGE5_VERTICES = 10_242
HEMISPHERES = ("lh", "rh")
SIDES = {"lh": "left", "rh": "right"}  # nilearn's names of the hemispheres
MESH_TYPES = ("inflated", "pial", "white", "sphere")
_NILEARN_PREFIX = {"inflated": "infl", "pial": "pial", "white": "white", "sphere": "sphere", "sulc": "sulc"}


def challenge_to_fsaverage(values: np.ndarray, vertices: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """Put values over some vertices (last axis) onto all 163,842 fsaverage vertices; others get ``fill``.

    Parameters
    ----------
    values : ndarray of shape (..., n_vertices)
        One value per entry of ``vertices`` (e.g. the Algonauts challenge vertices).
    vertices : ndarray of int, shape (n_vertices,)
        Their fsaverage indices.
    fill : float
        Value of the other vertices.

    Returns
    -------
    ndarray of shape (..., 163842)
    """
    values = np.asarray(values)
    if values.shape[-1] != len(vertices):
        raise ValueError(f"values: last axis has {values.shape[-1]} entries, expected {len(vertices)} vertices")
    out = np.full((*values.shape[:-1], N_FSAVERAGE_VERTICES), fill, dtype=np.result_type(values, np.float32))
    out[..., vertices] = values
    return out


def fsaverage_to_challenge(values: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The inverse of :func:`challenge_to_fsaverage`: keep the given vertices (last axis)."""
    values = np.asarray(values)
    if values.shape[-1] != N_FSAVERAGE_VERTICES:
        raise ValueError(f"values: last axis has {values.shape[-1]} entries, expected {N_FSAVERAGE_VERTICES}")
    return values[..., vertices]


@dataclass
class SurfaceMesh:
    """One kind of mesh and the sulcal depth of both hemispheres.

    Attributes
    ----------
    name : {"fsaverage", "fsaverage5"}
    mesh_type : {"inflated", "pial", "white", "sphere"}
    meshes : dict
        "lh"/"rh" -> ``nilearn.surface.InMemoryMesh`` (``coordinates``, ``faces``).
    sulc : dict
        "lh"/"rh" -> sulcal depth per vertex (the background shading of maps).
    n_vertices : int
        Vertices per hemisphere.
    """

    name: str
    mesh_type: str
    meshes: dict[str, Any]
    sulc: dict[str, np.ndarray]
    n_vertices: int


def fsaverage_folder(data_home: str | Path | None = None) -> Path:
    """``<data home>/fsaverage``: where full fsaverage is looked for and downloaded to."""
    return resolve_data_home(data_home) / "fsaverage"


def _candidates(folder: Path, what: str, hemi: str) -> list[Path]:
    """Accepted files for one hemisphere's mesh or sulcal depth: FreeSurfer's names, then nilearn's."""
    freesurfer = f"{hemi}.{what}"
    nilearn = f"{_NILEARN_PREFIX[what]}_{SIDES[hemi]}"
    return [
        folder / "surf" / freesurfer,
        folder / "surf" / f"{freesurfer}.gii",
        folder / f"{nilearn}.gii.gz",
        folder / f"{nilearn}.gii",
    ]


def _locate(folder: Path, mesh_type: str) -> tuple[dict[tuple[str, str], Path], list[str]]:
    """The files of a copy in ``folder``: found ``{(what, hemi): path}`` and the names of what is missing."""
    found, missing = {}, []
    for what in (mesh_type, "sulc"):
        for hemi in HEMISPHERES:
            path = next((p for p in _candidates(folder, what, hemi) if p.is_file()), None)
            if path is None:
                missing.append(f"{hemi}.{what}")
            else:
                found[(what, hemi)] = path
    return found, missing


def _read(path: Path, what: str, name: str, n_vertices: int) -> Any:
    """A mesh (``InMemoryMesh``) or sulcal depth, checked to have the ``n_vertices`` of ``name``."""
    from nilearn.surface import load_surf_data, load_surf_mesh

    expected = "the sulcal depth" if what == "sulc" else f"the {what} mesh"
    try:
        item = np.asarray(load_surf_data(str(path))) if what == "sulc" else load_surf_mesh(str(path))
    except Exception as err:
        raise ValueError(f"{path}: unreadable as {expected} in FreeSurfer or GIFTI format ({err})") from err
    if what == "sulc" and item.ndim != 1:
        raise ValueError(f"{path}: found an array of shape {item.shape}; expected one value per vertex")
    found = len(item) if what == "sulc" else item.n_vertices
    if found != n_vertices:
        raise ValueError(f"{path}: {expected} has {found:,} vertices; expected {name}'s {n_vertices:,}")
    return item


def _read_surface(name: str, files: dict[tuple[str, str], Path], mesh_type: str, n_vertices: int) -> SurfaceMesh:
    meshes = {hemi: _read(files[(mesh_type, hemi)], mesh_type, name, n_vertices) for hemi in HEMISPHERES}
    sulc = {hemi: _read(files[("sulc", hemi)], "sulc", name, n_vertices) for hemi in HEMISPHERES}
    return SurfaceMesh(name, mesh_type, meshes, sulc, n_vertices)


def _fsaverage5(mesh_type: str) -> SurfaceMesh:
    """nilearn's bundled fsaverage5 (no download)."""
    from nilearn.datasets import fetch_surf_fsaverage

    bunch = fetch_surf_fsaverage("fsaverage5")
    names = {(what, hemi): f"{_NILEARN_PREFIX[what]}_{SIDES[hemi]}" for what in (mesh_type, "sulc") for hemi in SIDES}
    files = {key: Path(bunch[name]) for key, name in names.items()}
    return _read_surface("fsaverage5", files, mesh_type, N_FSAVERAGE5_VERTICES)


def _download(folder: Path) -> str | None:
    """Let nilearn download full fsaverage into ``folder``; the reason when that fails (e.g. offline)."""
    from nilearn.datasets import fetch_surf_fsaverage

    try:
        fetch_surf_fsaverage("fsaverage", data_dir=str(folder.parent))
    except OSError as err:  # requests' errors are OSErrors too
        return f"{type(err).__name__}: {err}"
    return None


def load_surface(
    kind: str = "auto", data_home: str | Path | None = None, mesh_type: str = "inflated", *, download: bool = True
) -> SurfaceMesh:
    """fsaverage5 (bundled with nilearn) or full fsaverage (from the data home), with sulcal depth.

    Parameters
    ----------
    kind : {"auto", "fsaverage", "fsaverage5"}
        "fsaverage5": nilearn's bundled copy. "fsaverage": the copy in ``<data home>/fsaverage``
        (FreeSurfer's ``surf/`` layout or nilearn's GIFTI files), downloaded there with nilearn
        when it is missing. "auto": that copy when one is there, else fsaverage5 (never downloads;
        an incomplete copy is an error, not replaced silently).
    data_home : path, optional
        See :func:`scene2brain.data.home.data_home`.
    mesh_type : {"inflated", "pial", "white", "sphere"}
    download : bool
        With ``kind="fsaverage"``, download a missing copy (else fail at once).

    Returns
    -------
    SurfaceMesh

    Raises
    ------
    FileNotFoundError
        Full fsaverage was asked for and neither found in ``<data home>/fsaverage`` nor downloaded;
        the message names the folder, what is missing and what to place there.
    ValueError
        A file there is unreadable or not of fsaverage's 163,842 vertices.
    """
    if kind not in ("auto", "fsaverage", "fsaverage5"):
        raise ValueError(f"surface: expected 'auto', 'fsaverage' or 'fsaverage5', got {kind!r}")
    if mesh_type not in MESH_TYPES:
        raise ValueError(f"mesh_type: expected one of {MESH_TYPES}, got {mesh_type!r}")
    if kind == "fsaverage5":
        return _fsaverage5(mesh_type)
    folder = fsaverage_folder(data_home)
    found, missing = _locate(folder, mesh_type)
    if kind == "auto" and not found:
        return _fsaverage5(mesh_type)
    failure = None
    if missing and kind == "fsaverage" and download:
        failure = _download(folder)
        found, missing = _locate(folder, mesh_type)
    if missing:
        have = ", ".join(str(p.relative_to(folder)) for p in found.values()) or "none of them"
        why = f"; downloading it failed ({failure})" if failure else ""
        raise FileNotFoundError(
            f"{folder}: no full fsaverage {mesh_type} mesh and sulcal depth: missing {', '.join(missing)}"
            f" (found {have}){why}. Place a copy there, either FreeSurfer's subjects/fsaverage folder"
            f" (surf/lh.{mesh_type}, surf/rh.{mesh_type}, surf/lh.sulc, surf/rh.sulc) or nilearn's GIFTI"
            f" files ({_NILEARN_PREFIX[mesh_type]}_{{left,right}}.gii.gz, sulc_{{left,right}}.gii.gz),"
            " or use the surface 'fsaverage5'"
        )
    return _read_surface("fsaverage", found, mesh_type, N_FSAVERAGE_VERTICES)
