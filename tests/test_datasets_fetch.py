"""Fetching the public datasets: real HTTP downloads from a server on localhost, checksums, copies placed
by hand, unpacking, clear errors when offline or corrupt, and the `scene2brain datasets fetch` command."""

import dataclasses
import functools
import hashlib
import http.server
import json
import shutil
import socket
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from dataset_fixtures import write_bold5000, write_kay_nma, write_things
from PIL import Image
from typer.testing import CliRunner

from scene2brain.cli import app
from scene2brain.data.datasets import (
    DatasetFileError,
    fetch_dataset,
    load_bold5000,
    load_kay2008_nma,
    load_things_fmri,
)
from scene2brain.data.datasets import fetch as fetch_module


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``: (folder, base URL, paths requested)."""
    served = tmp_path / "served"
    served.mkdir()
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            requested.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=served))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    for var in ("NO_PROXY", "no_proxy"):  # a proxy configured on the machine must not take localhost traffic
        monkeypatch.setenv(var, "127.0.0.1")
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requested
    httpd.shutdown()
    httpd.server_close()


def _publish(monkeypatch, name, url, served, md5=True):
    """Point the real spec of ``name`` (file names, unpacking, layout) at ``url``, with the served sizes/MD5s."""
    spec = fetch_module.PUBLIC_DATASETS[name]
    files = tuple(
        dataclasses.replace(
            remote,
            url=f"{url}/{remote.name}",
            size=(served / remote.name).stat().st_size,
            md5=hashlib.md5((served / remote.name).read_bytes()).hexdigest() if md5 else None,
        )
        for remote in spec.files
    )
    monkeypatch.setitem(fetch_module.PUBLIC_DATASETS, name, dataclasses.replace(spec, files=files))


def _zip_folder(source, archive):
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(source.rglob("*")):
            zipped.write(path, path.relative_to(source))


def _bold5000_archives(tmp_path, served):
    """The ROI release (top folder ROIs/) and the stimuli (BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/...)."""
    rois = tmp_path / "rois"
    truth = write_bold5000(rois, subject=1)
    _zip_folder(rois, served / "BOLD5000_ROIs.zip")
    stimuli = tmp_path / "stimuli"
    presented = stimuli / "BOLD5000_Stimuli" / "Scene_Stimuli" / "Presented_Stimuli"
    folders = {"coco": "COCO", "imagenet": "ImageNet", "scenes": "Scene"}
    for k, name in enumerate(dict.fromkeys(truth["names"])):
        source = "coco" if name.startswith("COCO_") else "imagenet" if name.endswith(".JPEG") else "scenes"
        (presented / folders[source]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 8, 3), 30 * k, np.uint8)).save(presented / folders[source] / name, "JPEG")
    _zip_folder(stimuli, served / "BOLD5000_Stimuli.zip")
    return truth, presented


def test_bold5000_is_downloaded_verified_unpacked_and_loads(tmp_path, server, monkeypatch):
    served, url, requested = server
    truth, _ = _bold5000_archives(tmp_path, served)
    _publish(monkeypatch, "bold5000", url, served)
    home = tmp_path / "home"
    fetched = fetch_dataset("bold5000", home)
    folder = home / "bold5000"
    assert fetched.root == folder
    assert fetched.images == folder / "BOLD5000_Stimuli" / "Scene_Stimuli" / "Presented_Stimuli"
    assert sorted(requested) == ["/BOLD5000_ROIs.zip", "/BOLD5000_Stimuli.zip"]

    experiment = load_bold5000(fetched.root, 1, images_dir=fetched.images)
    np.testing.assert_allclose(experiment.responses.data[:, :3], truth["rois"]["LHEarlyVis"][:, :3], rtol=1e-6)
    assert experiment.stimuli.images[0].shape == (6, 8, 3)  # the JPEG came through the archive

    # archives are removed once unpacked; their checksums stay recorded
    assert not list(folder.glob("*.zip")) and not list(folder.glob(".*unpacking"))
    record = json.loads((folder / "fetched.json").read_text())
    served_digest = hashlib.sha256((served / "BOLD5000_ROIs.zip").read_bytes()).hexdigest()
    assert record["BOLD5000_ROIs.zip"]["sha256"] == served_digest
    assert record["BOLD5000_ROIs.zip"]["unpacked"] == ["ROIs"]
    assert record["BOLD5000_Stimuli.zip"]["unpacked"] == ["BOLD5000_Stimuli"]

    assert fetch_dataset("bold5000", home) == fetched  # nothing downloaded again
    assert len(requested) == 2


def test_a_tar_archive_with_a_top_folder_is_recognised_by_content(tmp_path, server, monkeypatch):
    """THINGS' betas_csv download is unpacked by some users with tar: accept either archive format."""
    served, url, _ = server
    source = tmp_path / "betas_csv"
    source.mkdir()
    truth = write_things(source, subject=1)
    with tarfile.open(served / "betas_csv.zip", "w:gz") as tarred:  # the published name, tar content
        tarred.add(source, arcname="betas_csv")
    _publish(monkeypatch, "things-fmri", url, served)
    fetched = fetch_dataset("things-fmri", tmp_path / "home")
    assert fetched.root == tmp_path / "home" / "things-fmri" / "betas_csv"
    assert fetched.images is None
    experiment = load_things_fmri(fetched.root, 1)
    assert experiment.responses.n_trials == (truth["trials"]["trial_type"] != "catch").sum()


def test_plain_files_are_reverified_against_the_recorded_sha256(tmp_path, server, monkeypatch):
    import pooch.downloaders

    served, url, requested = server
    write_kay_nma(served)
    _publish(monkeypatch, "kay2008-nma", url, served, md5=False)
    home = tmp_path / "home"
    monkeypatch.setattr(pooch.downloaders, "tqdm", None)  # a base install has no tqdm: no bar, still a download
    fetched = fetch_dataset("kay2008-nma", home, progress=True)
    assert fetched.root == home / "kay2008-nma"
    assert len(load_kay2008_nma(fetched.root).stimuli) == 20
    assert len(requested) == 3

    labels = fetched.root / "kay_labels_val.npy"  # no published size: only the recorded SHA-256 catches this
    corrupted = bytearray(labels.read_bytes())
    corrupted[-1] ^= 0xFF
    labels.write_bytes(bytes(corrupted))
    with pytest.raises(DatasetFileError, match=r"kay_labels_val\.npy: SHA-256 \w+ differs from the one recorded"):
        fetch_dataset("kay2008-nma", home)
    assert labels.is_file()  # kept for the user to inspect; nothing was downloaded
    assert len(requested) == 3


def test_a_download_that_fails_its_checksum_is_removed(tmp_path, server, monkeypatch):
    served, url, _ = server
    archive = tmp_path / "annotations"
    (archive / "annotations").mkdir(parents=True)
    (archive / "annotations" / "instances_val2017.json").write_text('{"images": []}')
    _zip_folder(archive, served / "annotations_trainval2017.zip")
    _publish(monkeypatch, "coco", url, served)
    spec = fetch_module.PUBLIC_DATASETS["coco"]
    wrong = dataclasses.replace(spec.files[0], md5="0" * 32)
    monkeypatch.setitem(fetch_module.PUBLIC_DATASETS, "coco", dataclasses.replace(spec, files=(wrong,)))
    folder = tmp_path / "home" / "coco"
    with pytest.raises(DatasetFileError, match=r"trainval2017\.zip: MD5 \w+ differs from the published 0+;"):
        fetch_dataset("coco", tmp_path / "home")
    assert not (folder / "annotations_trainval2017.zip").exists()

    monkeypatch.setitem(fetch_module.PUBLIC_DATASETS, "coco", spec)
    assert fetch_dataset("coco", tmp_path / "home").root == folder / "annotations"


def test_offline_fails_clearly_and_a_copy_placed_by_hand_is_used(tmp_path, server, monkeypatch):
    served, url, requested = server
    _bold5000_archives(tmp_path, served)
    _publish(monkeypatch, "bold5000", url, served)
    with socket.socket() as sock:  # a port nobody listens on: the connection is refused, as offline
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    spec = fetch_module.PUBLIC_DATASETS["bold5000"]
    offline = tuple(dataclasses.replace(r, url=r.url.replace(url, closed)) for r in spec.files)
    monkeypatch.setitem(fetch_module.PUBLIC_DATASETS, "bold5000", dataclasses.replace(spec, files=offline))
    home = tmp_path / "home"
    folder = home / "bold5000"
    with pytest.raises(DatasetFileError, match=r"BOLD5000_ROIs\.zip: missing and the download from .* failed"):
        fetch_dataset("bold5000", home)
    assert not [p for p in folder.iterdir() if p.name != "fetched.json"]  # no partial file left behind

    runner = CliRunner()
    result = runner.invoke(app, ["datasets", "fetch", "bold5000", "--home", str(home)])
    assert result.exit_code == 2 and "copy it to" in result.output

    truncated = folder / "BOLD5000_ROIs.zip"
    truncated.write_bytes((served / "BOLD5000_ROIs.zip").read_bytes()[:100])
    with pytest.raises(DatasetFileError, match=r"BOLD5000_ROIs\.zip: expected \d+ bytes as published, found 100"):
        fetch_dataset("bold5000", home)
    for name in ("BOLD5000_ROIs.zip", "BOLD5000_Stimuli.zip"):
        shutil.copy(served / name, folder / name)
    result = runner.invoke(app, ["datasets", "fetch", "bold5000", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert f"bold5000 is in {folder}" in result.output and "Presented_Stimuli" in result.output
    assert "load_bold5000" in result.output
    assert requested == []  # no byte came from the network


def test_a_corrupt_archive_is_reported_and_kept(tmp_path, server, monkeypatch):
    served, url, _ = server
    (served / "annotations_trainval2017.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 60)  # a zip header, no zip
    _publish(monkeypatch, "coco", url, served)
    with pytest.raises(DatasetFileError, match=r"trainval2017\.zip: (could not be unpacked|expected a zip)"):
        fetch_dataset("coco", tmp_path / "home")
    folder = tmp_path / "home" / "coco"
    assert (folder / "annotations_trainval2017.zip").is_file()  # the download is not lost
    assert not list(folder.glob(".*unpacking"))


def test_only_public_datasets_can_be_fetched(tmp_path):
    with pytest.raises(ValueError, match=r"expected one of \['bold5000', 'coco', 'kay2008-nma', 'things-fmri'\]"):
        fetch_dataset("nsd", tmp_path)
    result = CliRunner().invoke(app, ["datasets", "fetch", "nsd", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot be fetched" in result.output and "naturalscenesdataset.org" in result.output


def test_data_home_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCENE2BRAIN_DATA", str(tmp_path / "env"))
    assert fetch_module.data_home() == tmp_path / "env"
    assert fetch_module.data_home(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SCENE2BRAIN_DATA")
    assert fetch_module.data_home().name == "scene2brain_data"
