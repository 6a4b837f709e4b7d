"""The results folder of a run: its layout, file and column names, and a typed reader.

One place says where everything lives, so the pipeline (which writes), the report, the
command line and the demo (which read) cannot disagree::

    <root>/
      config.toml          the resolved configuration
      provenance.json      versions of Python and the libraries, the configuration
      run.json             what the last call computed and skipped, timings
      tables/              <name>.parquet and <name>.csv per table, facts.json, checks.json
      stages/              every stage's result folder (arrays as .npy, experiments)
      report/              index.html and figures/*.png|svg
      .lock                held by the run that writes the folder (one at a time)

``config.toml``, ``provenance.json`` and ``run.json`` are written when a run succeeds, so
they always describe the tables beside them; a failed run leaves the folder as it was.

Per-voxel tables name per-feature-space columns ``<quantity>[<space>]`` (e.g.
``r[effnet:head]``); see :func:`space_column`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CONFIG_FILE = "config.toml"
PROVENANCE_FILE = "provenance.json"
RUN_FILE = "run.json"
TABLES_DIR = "tables"
STAGES_DIR = "stages"
REPORT_DIR = "report"
FIGURES_DIR = "figures"
REPORT_INDEX = "index.html"
FACTS_FILE = "facts.json"
CHECKS_FILE = "checks.json"
STAGE_FILE = "stage.json"  # in every finished stage folder: its key, settings, inputs, seconds
LOCK_FILE = ".lock"  # held by the run writing the folder (a second run into it waits)

ROI_SUMMARY = "roi_summary"
MODEL_SUMMARY = "model_summary"
IDENTIFICATION = "identification"
DECODING = "decoding"
DECODING_CONFUSION = "decoding_confusion"
DECODING_NULL = "decoding_null"
DECODING_BLUR = "decoding_blur"
RSA = "rsa"
RSA_PAIRWISE = "rsa_pairwise"
RSA_SIMILARITY = "rsa_similarity"
SAE = "sae"  # the [sae] analysis (pipeline/analyses/sae.py): its tables
SAE_LATENTS = "sae_latents"
SAE_SEPARABILITY = "sae_separability"
SAE_EMBEDDING = "sae_embedding"
ENCODERS_TABLE = "encoders"  # the [[encoders]] comparison (pipeline/analyses/encoders.py)
ALL_VOXELS = "all"  # the ROI label of the row that pools every voxel


def voxels_table(subject: str) -> str:
    """Name of a subject's per-voxel table."""
    return f"voxels_{subject}"


def space_column(quantity: str, space: str) -> str:
    """Per-voxel column of one feature space: ``"r[effnet:head]"``."""
    return f"{quantity}[{space}]"


@dataclass(frozen=True)
class ResultsLayout:
    """Paths of a results folder rooted at ``root``."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def provenance(self) -> Path:
        return self.root / PROVENANCE_FILE

    @property
    def run_record(self) -> Path:
        return self.root / RUN_FILE

    @property
    def tables(self) -> Path:
        return self.root / TABLES_DIR

    @property
    def stages(self) -> Path:
        return self.root / STAGES_DIR

    @property
    def report(self) -> Path:
        return self.root / REPORT_DIR

    def table(self, name: str) -> Path:
        """The parquet file of table ``name``."""
        return self.tables / f"{name}.parquet"


def write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    """``<name>.parquet`` and ``<name>.csv`` in ``folder``."""
    frame.to_parquet(folder / f"{name}.parquet", index=False)
    frame.to_csv(folder / f"{name}.csv", index=False)


def _read_json(path: Path, root: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; is {root} a results folder written by `scene2brain run`?") from None


@dataclass
class Results:
    """What a results folder holds, read back.

    Attributes
    ----------
    layout : ResultsLayout
    config : dict
        The resolved configuration (as written in ``provenance.json``).
    versions : dict
    facts : dict
        ``{"subjects": {subject: {"n_train", "n_test", "n_voxels", "score", ...}}}``.
    checks : dict
        Ground-truth checks per subject (simulated data), else empty.
    compute_seconds : float
        Sum of every stage's compute time.
    """

    layout: ResultsLayout
    config: dict[str, Any]
    versions: dict[str, str]
    facts: dict[str, Any]
    checks: dict[str, dict[str, dict]] = field(default_factory=dict)
    compute_seconds: float = 0.0
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def subjects(self) -> list[str]:
        return list(self.facts["subjects"])

    def score(self, subject: str) -> str:
        """The primary score of a subject's results (``"nnacc"`` or ``"r"``)."""
        return self.facts["subjects"][subject]["score"]

    def has_table(self, name: str) -> bool:
        return self.layout.table(name).is_file()

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` (read once)."""
        if name not in self._tables:
            path = self.layout.table(name)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; tables of {self.root}: {self.table_names()}")
            self._tables[name] = pd.read_parquet(path)
        return self._tables[name]

    def table_names(self) -> list[str]:
        return sorted(p.stem for p in self.layout.tables.glob("*.parquet"))

    def voxels(self, subject: str) -> pd.DataFrame:
        return self.table(voxels_table(subject))


def read_results(root: str | Path) -> Results:
    """Read the provenance, facts and checks of a results folder (tables are read when asked for)."""
    layout = ResultsLayout(Path(root))
    if not layout.root.is_dir():
        raise FileNotFoundError(f"{layout.root}: results folder not found")
    provenance = _read_json(layout.provenance, layout.root)
    facts = _read_json(layout.tables / FACTS_FILE, layout.root)
    checks = layout.tables / CHECKS_FILE
    seconds = sum(
        json.loads(p.read_text()).get("seconds", 0.0)
        for p in [*layout.stages.glob(f"**/{STAGE_FILE}"), layout.tables / STAGE_FILE]
        if p.is_file()
    )
    return Results(
        layout=layout,
        config=provenance["config"],
        versions=provenance["versions"],
        facts=facts,
        checks=json.loads(checks.read_text()) if checks.is_file() else {},
        compute_seconds=float(seconds),
    )
