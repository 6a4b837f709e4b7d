"""The command line: a user error exits with status 2 and one message naming the culprit, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from bad_input_cases import Case, CLIFailure, cli


def _images(folder: Path, bad: bool = False) -> Path:
    images = folder / "images"
    images.mkdir(exist_ok=True)
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(images / f"img{i}.png")
    if bad:
        (images / "notes.png").write_text("not an image")
    return images


def _file(folder: Path, name: str = "taken") -> Path:
    path = folder / name
    path.write_text("a file")
    return path


def _study(folder: Path, output: str = "results") -> Path:
    path = folder / "study.toml"
    path.write_text(
        f'[run]\noutput = "{output}"\n[dataset]\nname = "simulated"\n[[features]]\nname = "gabor"\nmodel = "gabor"\n'
    )
    return path


def _extract(folder: Path, *args: str, bad: bool = False) -> str:
    return cli("extract", "--stimuli", _images(folder, bad), "--model", "gabor", "--layers", "energy", "--quiet", *args)


def _unwritable(folder: Path) -> str:
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        return cli("run", _study(folder, "locked/results"), "--quiet")
    finally:
        locked.chmod(0o755)


def _broken_toml(folder: Path) -> str:
    path = folder / "broken.toml"
    path.write_text("[run\noutput = 1")
    return cli("run", path)


CASES = [
    Case("cli/run-missing-config", lambda f: cli("run", f / "nowhere.toml"), CLIFailure,
         "nowhere.toml: configuration file not found", exit_code=2),
    Case("cli/run-invalid-toml", _broken_toml, CLIFailure, "broken.toml: not valid TOML", exit_code=2),
    Case("cli/run-output-is-a-file", lambda f: cli("run", _study(f), "--out", _file(f), "--quiet"), CLIFailure,
         "run.output: {folder}/taken is a file; expected a folder", exit_code=2),
    Case("cli/run-output-under-a-file", lambda f: cli("run", _study(f, "taken/results"), "--quiet") if _file(f) else 0,
         CLIFailure, "{folder}/taken is a file; expected a folder there", exit_code=2),
    Case("cli/extract-out-is-a-file", lambda f: _extract(f, "--out", str(_file(f))), CLIFailure,
         "--out: {folder}/taken is a file", exit_code=2),
    Case("cli/extract-missing-stimuli", lambda f: cli("extract", "--stimuli", f / "nowhere", "--out", f / "feats"),
         CLIFailure, "{folder}/nowhere", exit_code=2),
    Case("cli/extract-unknown-model", lambda f: cli("extract", "--stimuli", _images(f), "--out", f / "o", "--model",
         "nonet"), CLIFailure, "'nonet'", exit_code=2),
    Case("cli/extract-bad-pooling", lambda f: _extract(f, "--out", str(f / "o"), "--pool", "median"), CLIFailure,
         "--pool: pooling: expected one of flatten", exit_code=2),
    Case("cli/extract-absent-device", lambda f: _extract(f, "--out", str(f / "o"), "--device", "cuda:7"), CLIFailure,
         "--device: 'cuda:7' is not available", exit_code=2),
    Case("cli/extract-unreadable-image", lambda f: _extract(f, "--out", str(f / "o"), bad=True), CLIFailure,
         "notes.png", exit_code=2),
    Case("cli/report-missing-results", lambda f: cli("report", f / "nowhere"), CLIFailure,
         "{folder}/nowhere: results folder not found", exit_code=2),
    Case("cli/features-layers-unknown-model", lambda f: cli("features", "layers", "nonet"), CLIFailure,
         "unknown name 'nonet'", exit_code=2),
]  # fmt: skip

if os.geteuid() != 0:  # root writes anywhere: no permission error to provoke
    CASES.append(
        Case(
            "cli/run-output-unwritable",
            _unwritable,
            CLIFailure,
            "{folder}/locked/results would be created in",
            exit_code=2,
        )
    )
