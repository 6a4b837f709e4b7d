"""The command line's error boundary: messages for input errors, tracebacks with --debug, skipped images listed."""

import errno

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scene2brain.cli import app, error_message
from scene2brain.pipeline.config import ConfigError


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (FileExistsError(errno.EEXIST, "File exists", "/r/out"), "/r/out: File exists; something is already there"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/r/f/x"), "/r/f/x: Not a directory; part of this path"),
        (PermissionError(errno.EACCES, "Permission denied", "/r/o"), "/r/o: Permission denied; permission denied"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/r/d"), "/r/d: Is a directory; this is a folder"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device; free some space"),
        (OSError(errno.EIO, "Input/output error", "/r/i"), "/r/i: Input/output error"),
        (ConfigError("encoder.model: no"), "encoder.model: no"),
        (FileNotFoundError("stimuli: folder not found: /r/s"), "stimuli: folder not found: /r/s"),
    ],
)
def test_input_errors_become_one_message_naming_the_path(err, expected):
    assert expected in error_message(err)


def test_other_errors_are_bugs_and_keep_their_traceback():
    assert error_message(RuntimeError("bug")) is None
    assert error_message(OSError("no path, not a full disk")) is None
    assert error_message(KeyError("x")) is None


def test_debug_shows_the_traceback(tmp_path):
    runner = CliRunner()
    plain = runner.invoke(app, ["run", str(tmp_path / "nowhere.toml")])
    assert plain.exit_code == 2 and isinstance(plain.exception, SystemExit)
    assert "configuration file not found" in plain.output and "Traceback" not in plain.output
    debug = runner.invoke(app, ["--debug", "run", str(tmp_path / "nowhere.toml")])
    assert isinstance(debug.exception, ConfigError) and "configuration file not found" in str(debug.exception)


def test_extract_skip_unreadable_lists_the_files_it_left_out(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(images / f"img{i}.png")
    (images / "notes.png").write_text("not an image")
    args = ["extract", "--stimuli", str(images), "--model", "gabor", "--layers", "energy", "--quiet"]
    strict = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")], terminal_width=200)
    assert strict.exit_code == 2 and "notes.png" in strict.output
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--skip-unreadable"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "notes.png" in result.output and "1 unreadable files skipped" in result.output
    assert "features of 3 images" in result.output


def test_warnings_show_their_text_not_our_source_line():
    import warnings

    from scene2brain import cli

    line = cli._short_warning(UserWarning("3 voxels left out (nan_policy='drop')"), UserWarning, "x.py", 12)
    assert line == "UserWarning: 3 voxels left out (nan_policy='drop')\n"
    before = warnings.formatwarning
    try:
        CliRunner().invoke(cli.app, ["version"])
        assert warnings.formatwarning is cli._short_warning
    finally:
        warnings.formatwarning = before
