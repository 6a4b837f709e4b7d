"""Download the datasets that are public without registration into a data home, with checksums.

Each public dataset is a list of remote files (plain files or zip/tar archives to unpack).
A file already in the dataset's folder is used as it is, so an offline machine works from
a copy placed there by hand. Every file is checked against its published size and MD5
where those are known; on first use its SHA-256 is recorded in ``fetched.json`` and plain
files are verified against it on later calls. Archives are unpacked into a temporary
folder, moved into place entry by entry and then removed (their checksums stay recorded).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from scene2brain.data.datasets._files import DatasetFileError
from scene2brain.data.home import data_home
from scene2brain.utils.files import atomic_path


@dataclass(frozen=True)
class RemoteFile:
    """One published file.

    Attributes
    ----------
    name : str
        File name in the dataset's folder of the data home.
    url : str
        Where it is published.
    size : int, optional
        Size in bytes, where known.
    md5 : str, optional
        Published MD5 checksum, where there is one.
    unpack : bool
        A zip or tar archive whose contents are unpacked beside it.
    """

    name: str
    url: str
    size: int | None = None
    md5: str | None = None
    unpack: bool = False


@dataclass(frozen=True)
class PublicDataset:
    """What to download for a dataset and how to find the loader's folders in the result.

    Attributes
    ----------
    files : tuple of RemoteFile
    root : str
        A path, relative to the loader's ``root``, that exists once everything is unpacked.
    images : str, optional
        Name of the folder holding the images, where the download includes them.
    """

    files: tuple[RemoteFile, ...]
    root: str
    images: str | None = None


@dataclass(frozen=True)
class Fetched:
    """Where a fetched dataset lies: ``root`` for its loader, ``images`` where it ships them."""

    root: Path
    images: Path | None = None


_BOLD5000_STIMULI = "https://www.dropbox.com/s/5ie18t4rjjvsl47/BOLD5000_Stimuli.zip?dl=1"

PUBLIC_DATASETS: dict[str, PublicDataset] = {
    # NMA course-content, projects/fMRI/load_kay_images.ipynb; sizes from the Git LFS pointers
    "kay2008-nma": PublicDataset(
        (
            RemoteFile("kay_images.npz", "https://osf.io/ymnjv/download", size=248_704_338),
            RemoteFile("kay_labels.npy", "https://osf.io/r638s/download", size=1_988_128),
            RemoteFile("kay_labels_val.npy", "https://osf.io/yqb3e/download"),
        ),
        root="kay_images.npz",
    ),
    # ViCCo-Group/THINGS-data README: the single-trial responses in table format (all subjects)
    "things-fmri": PublicDataset(
        (RemoteFile("betas_csv.zip", "https://plus.figshare.com/ndownloader/files/36789690", unpack=True),),
        root="sub-01_VoxelMetadata.csv",
    ),
    # figshare article 6459449 (BOLD5000 release 1): the ROI release; the stimuli from the project's Dropbox
    "bold5000": PublicDataset(
        (
            RemoteFile("BOLD5000_ROIs.zip", "https://ndownloader.figshare.com/files/12965447", unpack=True),
            RemoteFile("BOLD5000_Stimuli.zip", _BOLD5000_STIMULI, unpack=True),
        ),
        root="ROIs/stim_lists",
        images="Presented_Stimuli",
    ),
    # cocodataset.org; size and MD5 as published by several independent download scripts
    "coco": PublicDataset(
        (
            RemoteFile(
                "annotations_trainval2017.zip",
                "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                size=252_907_541,
                md5="f4bbac642086de4f52a3fdda2de5fa2c",
                unpack=True,
            ),
        ),
        root="instances_val2017.json",
    ),
}


def fetch_dataset(name: str, home: str | Path | None = None, *, progress: bool = False) -> Fetched:
    """Download a public dataset into ``<data home>/<name>`` (once) and say where its loader's root is.

    Parameters
    ----------
    name : str
        One of :data:`PUBLIC_DATASETS`: "kay2008-nma", "things-fmri", "bold5000", "coco".
    home : path, optional
        Data home; see :func:`data_home`.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    Fetched
        ``root`` to pass to the dataset's loader, and the images folder where the download has one.

    Raises
    ------
    DatasetFileError
        A download failed (offline, server error; the message says where to put the file by hand),
        a file does not have its published size or checksum or differs from the one recorded at
        first download, or an archive is corrupt.
    """
    if name not in PUBLIC_DATASETS:
        public = sorted(PUBLIC_DATASETS)
        raise ValueError(f"dataset: expected one of {public} (public without registration), got {name!r}")
    spec = PUBLIC_DATASETS[name]
    folder = data_home(home) / name
    folder.mkdir(parents=True, exist_ok=True)
    record_path = folder / "fetched.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    for remote in spec.files:
        done = record.get(remote.name)
        if done and remote.unpack and all((folder / entry).exists() for entry in done["unpacked"]):
            continue
        path = folder / remote.name
        downloaded = not path.is_file()
        if downloaded:
            _download(remote, folder, progress)
        try:
            digest = _verify(path, remote, done)
        except DatasetFileError as err:
            if not downloaded:
                raise  # a copy placed by hand stays for the user to look at
            path.unlink()
            raise DatasetFileError(f"{err}; the download from {remote.url} was removed") from None
        record[remote.name] = {"url": remote.url, "bytes": path.stat().st_size, "sha256": digest}
        if remote.unpack:
            record[remote.name]["unpacked"] = _unpack(path, folder)
        with atomic_path(record_path) as tmp:  # after each file: an interrupted fetch keeps what it has
            tmp.write_text(json.dumps(record, indent=1) + "\n")
        if remote.unpack:
            path.unlink()
    root = _find(folder, spec.root)
    root = root.parents[len(Path(spec.root).parts) - 1]
    return Fetched(root, _find(folder, spec.images) if spec.images else None)


def _download(remote: RemoteFile, folder: Path, progress: bool) -> None:
    """Download to a temporary file beside the target, moved into place only when complete."""
    from pooch import downloaders

    progress = progress and downloaders.tqdm is not None  # pooch draws its bar with tqdm, an optional package
    target = folder / remote.name
    try:
        with atomic_path(target) as tmp:
            downloaders.choose_downloader(remote.url, progressbar=progress)(remote.url, str(tmp), None)
    except Exception as err:
        raise DatasetFileError(
            f"{target}: missing and the download from {remote.url} failed "
            f"({type(err).__name__}: {err}); when offline, download it elsewhere and copy it to {folder}"
        ) from err


def _verify(path: Path, remote: RemoteFile, done: dict | None) -> str:
    """Check size, published MD5 and recorded SHA-256; return the SHA-256."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise DatasetFileError(f"{path}: expected {remote.size} bytes as published, found {size} (truncated?)")
    with open(path, "rb") as fh:
        if remote.md5 is not None:
            md5 = hashlib.file_digest(fh, "md5").hexdigest()
            if md5 != remote.md5:
                raise DatasetFileError(f"{path}: MD5 {md5} differs from the published {remote.md5}")
            fh.seek(0)
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if done and done["sha256"] != digest:
        raise DatasetFileError(
            f"{path}: SHA-256 {digest} differs from the one recorded at first download ({done['sha256']}) "
            f"in {path.parent / 'fetched.json'}; delete the file to download it again"
        )
    return digest


def _unpack(archive: Path, folder: Path) -> list[str]:
    """Unpack a zip or tar archive into ``folder``; return its top-level entries."""
    tmp = folder / f".{archive.name}.unpacking"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tarred:
                tarred.extractall(tmp, filter="data")
        else:
            raise DatasetFileError(f"{archive}: expected a zip or tar archive, found neither")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetFileError(f"{archive}: could not be unpacked ({type(err).__name__}: {err})") from err
    entries = sorted(entry.name for entry in tmp.iterdir())
    for entry in entries:
        target = folder / entry
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(tmp / entry, target)
    tmp.rmdir()
    return entries


def _find(folder: Path, relative: str) -> Path:
    """``folder/relative``, or the shallowest ``folder/*/.../relative`` (archives often add a top folder)."""
    for depth in range(5):
        hits = sorted(folder.glob("*/" * depth + relative))
        if hits:
            return hits[0]
    raise DatasetFileError(f"{folder}: no {relative} found in the fetched files; expected it in the published layout")
