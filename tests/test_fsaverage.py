"""fsaverage surfaces: fsaverage5 from nilearn, full fsaverage from a copy in the data home or downloaded there.

No test reaches the network: ``requests.Session.send`` (what nilearn's fetcher sends with)
either raises as it does offline or answers with an archive made here.
"""

import functools
import gzip
import io
import zipfile
from pathlib import Path

import nibabel as nib
import nibabel.freesurfer as fs
import numpy as np
import pytest
import requests

from scene2brain.data.fsaverage import N_FSAVERAGE5_VERTICES, N_FSAVERAGE_VERTICES, fsaverage_folder, load_surface

N_FS = N_FSAVERAGE_VERTICES
FACES = np.array([[0, 1, 2], [0, 2, 3], [1, 2, 3]], dtype=np.int32)
# Hand-written FreeSurfer meshes carry no volume information; nibabel says so when reading them.
pytestmark = pytest.mark.filterwarnings("ignore:Unknown extension code", "ignore:No volume information")


def coordinates(hemi: str, kind: str = "inflated") -> np.ndarray:
    """Distinct coordinates per hemisphere and mesh type, so a mix-up shows."""
    seed = ["lh", "rh"].index(hemi) * 10 + ["inflated", "pial", "white", "sphere"].index(kind)
    return np.random.default_rng(seed).standard_normal((N_FS, 3)).astype(np.float32)


def sulcal_depth(hemi: str) -> np.ndarray:
    return np.arange(N_FS, dtype=np.float32) * (1 if hemi == "lh" else -1)


def write_freesurfer(folder: Path, kinds=("inflated", "pial"), hemis=("lh", "rh")) -> None:
    """FreeSurfer's subject layout: ``surf/lh.inflated``, ``surf/lh.sulc`` ..."""
    surf = folder / "surf"
    surf.mkdir(parents=True, exist_ok=True)
    for hemi in hemis:
        for kind in kinds:
            fs.write_geometry(surf / f"{hemi}.{kind}", coordinates(hemi, kind), FACES)
        fs.write_morph_data(surf / f"{hemi}.sulc", sulcal_depth(hemi))


@functools.cache
def gifti_bytes(hemi: str, what: str) -> bytes:
    """A GIFTI mesh (``what`` a mesh type) or sulcal depth (``what="sulc"``), as bytes."""
    if what == "sulc":
        arrays = [nib.gifti.GiftiDataArray(sulcal_depth(hemi), intent="NIFTI_INTENT_SHAPE")]
    else:
        arrays = [
            nib.gifti.GiftiDataArray(coordinates(hemi, what), intent="NIFTI_INTENT_POINTSET"),
            nib.gifti.GiftiDataArray(FACES, intent="NIFTI_INTENT_TRIANGLE"),
        ]
    return nib.gifti.GiftiImage(darrays=arrays).to_bytes()


NILEARN_NAMES = {"inflated": "infl", "pial": "pial", "sulc": "sulc"}


def write_gifti(folder: Path, suffix: str = ".gii.gz") -> None:
    """nilearn's layout: ``infl_left.gii.gz``, ``sulc_right.gii.gz`` ... (or ``.gii``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for hemi, side in (("lh", "left"), ("rh", "right")):
        for what, name in NILEARN_NAMES.items():
            data = gifti_bytes(hemi, what)
            (folder / f"{name}_{side}{suffix}").write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)


@pytest.fixture
def offline(monkeypatch):
    """Every HTTP request fails as it does without a network; the URLs asked for are recorded."""
    asked = []

    def send(self, request, **kwargs):
        asked.append(request.url)
        raise requests.ConnectionError(f"Failed to resolve '{request.url}' (offline)")

    monkeypatch.setattr(requests.Session, "send", send)
    return asked


def assert_full_fsaverage(surface, mesh_type="inflated") -> None:
    assert (surface.name, surface.mesh_type, surface.n_vertices) == ("fsaverage", mesh_type, N_FS)
    for hemi in ("lh", "rh"):
        np.testing.assert_array_equal(surface.meshes[hemi].coordinates, coordinates(hemi, mesh_type))
        np.testing.assert_array_equal(surface.meshes[hemi].faces, FACES)
        np.testing.assert_array_equal(surface.sulc[hemi], sulcal_depth(hemi))


def test_fsaverage5_comes_from_nilearn_offline(tmp_path, offline):
    for surface in (load_surface("fsaverage5", tmp_path), load_surface("auto", tmp_path)):
        assert (surface.name, surface.n_vertices) == ("fsaverage5", N_FSAVERAGE5_VERTICES)
        for hemi in ("lh", "rh"):
            assert surface.meshes[hemi].coordinates.shape == (N_FSAVERAGE5_VERTICES, 3)
            assert surface.sulc[hemi].shape == (N_FSAVERAGE5_VERTICES,) and np.ptp(surface.sulc[hemi]) > 0
    assert load_surface("fsaverage5", mesh_type="pial").meshes["lh"].n_vertices == N_FSAVERAGE5_VERTICES
    assert offline == []  # "auto" without a copy does not download


def test_a_freesurfer_copy_in_the_data_home_is_used_offline(tmp_path, offline):
    write_freesurfer(fsaverage_folder(tmp_path))
    assert_full_fsaverage(load_surface("fsaverage", tmp_path))
    assert_full_fsaverage(load_surface("auto", tmp_path))
    assert_full_fsaverage(load_surface("fsaverage", tmp_path, mesh_type="pial"), "pial")
    assert load_surface("fsaverage5", tmp_path).name == "fsaverage5"
    assert offline == []


@pytest.mark.parametrize("suffix", [".gii.gz", ".gii"])
def test_gifti_files_in_nilearns_layout_are_used_offline(tmp_path, offline, suffix):
    write_gifti(fsaverage_folder(tmp_path), suffix)
    assert_full_fsaverage(load_surface("fsaverage", tmp_path))
    assert_full_fsaverage(load_surface("auto", tmp_path, mesh_type="pial"), "pial")
    assert offline == []


def test_the_data_home_comes_from_the_environment(tmp_path, monkeypatch, offline):
    write_freesurfer(tmp_path / "fsaverage", kinds=("inflated",))
    monkeypatch.setenv("SCENE2BRAIN_DATA", str(tmp_path))
    assert_full_fsaverage(load_surface("fsaverage"))


def test_offline_without_a_copy_says_where_to_place_one(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as error:
        load_surface("fsaverage", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "fsaverage") in message  # the folder looked in
    assert "missing lh.inflated, rh.inflated, lh.sulc, rh.sulc (found none of them)" in message
    assert "downloading it failed (ConnectionError" in message
    assert "surf/lh.inflated" in message and "infl_{left,right}.gii.gz" in message  # what to place there
    assert offline and "osf.io" in offline[0]  # nilearn's fetcher did try, into the data home
    with pytest.raises(FileNotFoundError, match=r"surf/lh\.pial"):
        load_surface("fsaverage", tmp_path, mesh_type="pial")


def test_no_download_when_told_not_to(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match=r"missing lh\.inflated") as error:
        load_surface("fsaverage", tmp_path, download=False)
    assert "downloading" not in str(error.value) and offline == []


def test_an_incomplete_copy_is_named_not_silently_replaced(tmp_path, offline):
    write_freesurfer(fsaverage_folder(tmp_path), hemis=("lh",))
    with pytest.raises(FileNotFoundError, match=r"missing rh\.inflated, rh\.sulc \(found surf/lh\.inflated, surf/lh"):
        load_surface("auto", tmp_path)
    assert offline == []  # "auto" never downloads


def test_a_mesh_of_the_wrong_size_is_named(tmp_path, offline):
    write_freesurfer(fsaverage_folder(tmp_path))
    small = fsaverage_folder(tmp_path) / "surf" / "rh.inflated"
    fs.write_geometry(small, np.zeros((4, 3)), FACES)  # e.g. a tiny or a lower-resolution fsaverage
    with pytest.raises(ValueError, match=rf"{small}: the inflated mesh has 4 vertices; expected fsaverage's 163,842"):
        load_surface("fsaverage", tmp_path)
    write_freesurfer(fsaverage_folder(tmp_path))
    (fsaverage_folder(tmp_path) / "surf" / "lh.sulc").unlink()
    (fsaverage_folder(tmp_path) / "sulc_left.gii").write_bytes(b"not GIFTI")  # the next file looked for
    with pytest.raises(ValueError, match=r"sulc_left\.gii: unreadable as the sulcal depth in FreeSurfer or GIFTI"):
        load_surface("fsaverage", tmp_path)


def test_online_nilearn_downloads_into_the_data_home(tmp_path, monkeypatch):
    """nilearn's fetcher runs for real (download, unpack, move); only the HTTP answer is made here."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for side in ("left", "right"):
            for part in ("area", "curv", "flat", "infl", "pial", "sphere", "sulc", "thick", "white"):
                name = f"{part}_{side}.gii.gz"
                what = {"infl": "inflated", "pial": "pial", "sulc": "sulc"}.get(part)
                zf.writestr(name, gzip.compress(gifti_bytes("lh" if side == "left" else "rh", what)) if what else b"")
    asked = []

    def send(self, request, **kwargs):
        asked.append(request.url)
        response = requests.Response()
        response.status_code, response.url, response.raw = 200, request.url, io.BytesIO(archive.getvalue())
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    assert_full_fsaverage(load_surface("fsaverage", tmp_path))
    assert len(asked) == 1 and "osf.io" in asked[0]
    assert (tmp_path / "fsaverage" / "infl_left.gii.gz").is_file()  # nilearn's layout, in the data home
    assert_full_fsaverage(load_surface("auto", tmp_path, mesh_type="pial"), "pial")
    assert len(asked) == 1  # the copy is reused
