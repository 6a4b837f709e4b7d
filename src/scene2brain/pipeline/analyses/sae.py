"""Sparse autoencoders of ROI responses: latent codes, what they encode, one embedding for all classes.

Stage ``sae/<subject>/<model>:seed<k>``, one per ``[[sae.models]]`` entry and seed:

- a :class:`~scene2brain.representation.SparseAutoencoder` fitted on the repeat-averaged
  **training** responses of the ``[sae] rois`` voxels (per-voxel standardisation from those
  rows; early stopping on a validation part of them, whole stimulus groups held out);
  the test stimuli's codes are refused if any of them was a training stimulus (by id);
- on the **test** stimuli: per-voxel reconstruction R^2, and the cross-repeat R^2 (each
  stimulus's first showing reconstructed, scored against the mean of its other showings;
  noise-normalised by that mean's ceiling where the run has one), sparsity, dead units (on the
  training rows); PCA, ICA and NMF codes of the same size fitted on the same standardised
  training rows;
- per label (``[sae] labels``, stimulus-table columns) on the test stimuli: each latent's
  selectivity (AUC, Mann-Whitney and permutation p-values), separability of the classes
  from the codes (SAE, baselines, raw voxels: the same grouped folds and permutations),
  the source project's norm test for comparison;
- with the simulation's sparse factors in the voxel table: how well the dictionary (and
  the baselines' patterns) recovers the true voxel patterns, and which ROI holds the most
  label-selective latent's atom;
- for the first seed: one t-SNE/UMAP embedding of the training stimuli's codes (every class
  together), the test stimuli placed into it.

Tables: ``sae`` (one row per subject x model x seed), ``sae_latents`` (per latent and label,
with ``p_fdr_across``: Benjamini-Hochberg over every latent, subject, model and seed),
``sae_separability`` and ``sae_embedding``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from scene2brain.data.containers import stimulus_labels
from scene2brain.data.fsaverage import load_surface
from scene2brain.data.home import data_home
from scene2brain.data.storage import load_experiment
from scene2brain.evaluation.metrics import r2_score
from scene2brain.pipeline.analyses.encoding import roi_masks
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.config import ConfigError
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageId
from scene2brain.pipeline.plan import EXPERIMENT_DIR, NOISE_CEILING_FILE, Plan, training_groups
from scene2brain.report.html import Block, FigureBlock, table_html
from scene2brain.representation import (
    SparseAutoencoder,
    atom_roi_fraction,
    baseline_codes,
    compare_separability,
    dead_units,
    dictionary_recovery,
    embed,
    fdr_across,
    latent_selectivity,
    norm_test,
    repeat_partitions,
    sparsity_stats,
)
from scene2brain.results import SAE, SAE_EMBEDDING, SAE_LATENTS, SAE_SEPARABILITY, Results, write_table
from scene2brain.viz.decoding import figure_decoding_accuracy
from scene2brain.viz.sae import figure_dictionary, figure_embedding, figure_latent_selectivity, figure_sae_overview
from scene2brain.viz.surface import figure_surface_map, voxels_to_surface

RECORD = "sae.json"
DICTIONARY_FILE = "sae_dictionary.npz"  # in tables/: each subject x model's first-seed dictionary, for the report
SPARSE_FACTOR = "sparse_factor_"  # the simulation's true loadings: voxel-table columns sparse_factor_<k>
FDR_ALPHA = 0.05
MAX_CLASSES = 20  # a label column with more classes and no positive class is refused (one test per class)


def sae_id(subject: str, model: str, seed: int) -> StageId:
    return StageId("sae", subject, f"{model}:seed{seed}")


def plan(p: Plan) -> TableNeeds | None:
    config = p.config
    sae = config.sae
    if sae is None:
        return None
    common = {
        **sae.model_dump(mode="json", exclude={"models", "seeds", "device"}),
        "roi_column": config.dataset.roi_column,
        "train": config.splits.train,
        "test": config.splits.test,
        "seed": config.run.seed,
    }
    inputs = []
    for subject in p.subjects:
        for model in sae.models:
            for seed in sae.seeds:
                stage = Stage(
                    sae_id(subject, model.name, seed),
                    compute_sae,
                    {**common, "subject": subject, "model": model.name, "options": model.options,
                     "model_seed": seed, "embed": seed == sae.seeds[0]},
                    {"experiment": Ref(p.experiment(subject)), "responses": Ref(p.responses(subject)),
                     "noise_ceiling": Ref(p.noise_ceiling(subject))},
                    options={"device": sae.device},
                )  # fmt: skip
                inputs.append(Ref(p.graph.add(stage)))
    settings = {
        "subjects": p.subjects,
        "models": [m.name for m in sae.models],
        "seeds": sae.seeds,
        "labels": sae.labels,
    }
    return TableNeeds(settings, inputs)


def _voxel_selection(voxels: pd.DataFrame, s: dict) -> np.ndarray:
    """Boolean mask of the voxels of ``[sae] rois`` (every voxel when not given)."""
    masks = roi_masks(voxels, s["roi_column"], s["subject"])
    if s["rois"] is None:
        return np.ones(len(voxels), dtype=bool)
    unknown = [r for r in s["rois"] if r not in masks]
    if unknown:
        raise ConfigError(f"sae.rois: {unknown} are not ROIs of {s['roi_column']!r}; found {sorted(masks)}")
    return np.logical_or.reduce([masks[r] for r in s["rois"]])


def positive_class(values: np.ndarray, column: str, chosen: dict[str, str]) -> str | None:
    """The class tested against the others for ``column``: ``[sae] positive``, the class named like the column, or None.

    None (no single positive class) with more than two classes and nothing chosen: every
    class is then tested against the rest.
    """
    classes = sorted(set(values.tolist()))
    if column in chosen:
        if chosen[column] not in classes:
            raise ConfigError(f"sae.positive: {column} = {chosen[column]!r} is not one of its classes {classes[:10]}")
        return chosen[column]
    if column in classes:
        return column
    return classes[1] if len(classes) == 2 else None


def _label_analyses(s: dict, codes: dict[str, np.ndarray], z_test: np.ndarray, labels: np.ndarray, groups: np.ndarray):
    """Selectivity rows, separability rows and the norm test of one label column on the test stimuli."""
    known = labels != ""
    classes = sorted(set(labels[known].tolist()))
    if len(classes) < 2:
        raise ConfigError(f"sae.labels: {s['label']!r} has fewer than two classes among the test stimuli ({classes})")
    positive = positive_class(labels[known], s["label"], s["positive"])
    if positive is None and len(classes) > MAX_CLASSES:
        raise ConfigError(
            f"sae.labels: {s['label']!r} has {len(classes)} classes among the test stimuli (a continuous column?); "
            f"each would be tested against the rest: expected at most {MAX_CLASSES}, or name one in sae.positive"
        )
    latents = []
    for pos in [positive] if positive is not None else classes:
        table = latent_selectivity(
            z_test[known], labels[known], positive=pos, n_permutations=s["n_permutations"], groups=groups[known],
            random_state=s["seed"],
        )  # fmt: skip
        latents.append(table)
    separability = compare_separability(
        {name: c[known] for name, c in codes.items()}, labels[known], groups=groups[known], decoder=s["decoder"],
        n_folds=s["cv"], n_permutations=s["n_permutations"], random_state=s["seed"],
    )  # fmt: skip
    norm = norm_test(z_test[known], labels[known], positive=positive) if len(classes) == 2 else None
    return pd.concat(latents, ignore_index=True), separability, norm


def compute_sae(ctx: StageContext) -> None:
    """Fit one sparse autoencoder on the training responses; analyse the test stimuli's codes."""
    s = ctx.settings
    folder = ctx.input("responses")
    experiment = load_experiment(ctx.input("experiment") / EXPERIMENT_DIR)
    table = experiment.stimuli.table
    voxels = pd.read_parquet(folder / "voxels.parquet")
    keep = _voxel_selection(voxels, s)
    train_stim, test_stim = np.load(folder / "train_stimuli.npy"), np.load(folder / "test_stimuli.npy")
    x_train = np.load(folder / "train.npy")[:, keep].astype(np.float64)
    x_test = np.load(folder / "test.npy")[:, keep].astype(np.float64)
    ids = np.asarray(table["stimulus_id"].astype(str))
    train_ids, test_ids = ids[train_stim], ids[test_stim]
    model = SparseAutoencoder(**s["options"], random_state=s["model_seed"], device=ctx.options["device"])
    model.fit(x_train, stimulus_ids=train_ids, groups=np.load(folder / "train_groups.npy"))
    z_train = model.transform(x_train, stimulus_ids=train_ids, allow_training=True)
    z_test = model.transform(x_test, stimulus_ids=test_ids)
    r2 = model.reconstruction_r2(x_test, stimulus_ids=test_ids)
    ceiling = np.load(ctx.input("noise_ceiling") / NOISE_CEILING_FILE)[keep]
    cross, n_repeats = _cross_repeat_r2(model, experiment, s["test"], test_stim, keep, test_ids)
    nr2 = cross / ceiling_of_fewer_repeats(ceiling, n_repeats) if cross is not None else None
    dictionary = model.dictionary_voxels()
    n_latents = dictionary.shape[0]
    standardised = [(x - model.mean_) / model.scale_ for x in (x_train, x_test)]
    # baselines of the same size where one exists (an overcomplete dictionary has none: at most as many
    # components as training rows and voxels)
    n_base = n_latents if n_latents <= min(x_train.shape) else 0
    with warnings.catch_warnings(record=True) as caught:  # FastICA's convergence: recorded, not printed
        warnings.simplefilter("always", ConvergenceWarning)
        bases = (
            baseline_codes(*standardised, n_base, methods=s["baselines"], random_state=s["model_seed"])
            if n_base and s["baselines"]
            else {}
        )
    record: dict = {
        "n_voxels": int(keep.sum()),
        "n_train": len(train_ids),
        "n_test": len(test_ids),
        "n_latents": int(n_latents),
        "n_epochs": int(model.n_epochs_),
        "best_epoch": int(model.best_epoch_),
        "sparsity": sparsity_stats(z_test),
        "dead_units": int(dead_units(z_train).sum()),
        "dead_units_test": int(dead_units(z_test).sum()),
        "recon_r2_test": float(np.nanmedian(r2)),
        "recon_r2_cross": float(np.nanmedian(cross)) if cross is not None else None,
        "recon_nnr2_cross": float(np.nanmedian(nr2)) if nr2 is not None and np.isfinite(nr2).any() else None,
        "baseline_warnings": sorted({str(w.message) for w in caught}),
        "recon_r2_baselines": {
            name: float(np.nanmedian(_held_out_r2(standardised, b.train, b.eval))) for name, b in bases.items()
        },
    }
    rois = voxels.loc[keep, s["roi_column"]].astype(str).to_numpy()
    record["rois"] = sorted(set(rois.tolist()))
    truth = [c for c in voxels.columns if c.startswith(SPARSE_FACTOR)]
    if truth:
        true_patterns = voxels.loc[keep, truth].to_numpy(dtype=np.float64).T
        true_patterns = true_patterns[np.abs(true_patterns).sum(axis=1) > 0]
        if len(true_patterns):
            record["recovery"] = {
                "sae": float(np.median(dictionary_recovery(true_patterns, dictionary)[0])),
                **{
                    name: float(np.median(dictionary_recovery(true_patterns, b.patterns * model.scale_)[0]))
                    for name, b in bases.items()
                },
            }
    fractions = atom_roi_fraction(np.nan_to_num(dictionary), rois)
    latent_tables, separability, norms, label_values = [], [], {}, {}
    test_groups = training_groups(table, test_stim)
    codes = {"sae": z_test, **{name: b.eval for name, b in bases.items()}, "voxels": standardised[1]}
    for column in s["labels"]:
        try:
            values = stimulus_labels(table, column)
        except ValueError as err:
            raise ConfigError(f"sae.labels: {err}") from None
        label_values[column] = np.asarray(values.fillna("").astype(str), dtype=str)
        labels = label_values[column][test_stim]
        latents, sep, norm = _label_analyses({**s, "label": column}, codes, z_test, labels, test_groups)
        latent_tables.append(latents.assign(label=column))
        separability.append(sep.assign(label=column))
        norms[column] = norm
        # where each latent's atom lives: the report's selective latent is chosen after the FDR across everything
        share = fractions.loc[latents["latent"].to_numpy()].reset_index(drop=True)
        latent_tables[-1] = latent_tables[-1].join(share.add_prefix("roi_fraction[").add_suffix("]"))
    record["norm_test"] = norms
    if s["embed"] and s["embedding"] != "none":
        fitted = embed(z_train, s["embedding"], random_state=s["model_seed"])
        placed = fitted.place(z_test)
        shown = label_values.get(s["labels"][0]) if s["labels"] else None
        shown = np.full(len(ids), "") if shown is None else shown
        np.savez(ctx.out / "embedding.npz", train=fitted.coordinates, test=placed, train_stimuli=train_stim,
                 test_stimuli=test_stim, train_labels=shown[train_stim], test_labels=shown[test_stim])  # fmt: skip
    (ctx.out / RECORD).write_text(json.dumps(record, indent=2))
    np.save(ctx.out / "dictionary.npy", dictionary.astype(np.float32))
    np.save(ctx.out / "recon_r2.npy", r2)
    np.save(ctx.out / "voxel_index.npy", np.flatnonzero(keep))
    if latent_tables:
        pd.concat(latent_tables, ignore_index=True).to_parquet(ctx.out / "latents.parquet", index=False)
        pd.concat(separability, ignore_index=True).to_parquet(ctx.out / "separability.parquet", index=False)


def ceiling_of_fewer_repeats(ceiling: np.ndarray, n_repeats: int) -> np.ndarray:
    """The noise ceiling of an average of ``n_repeats - 1`` showings, from that of ``n_repeats`` (fractions).

    With ``NC_n = s / (s + 1/n)`` (``s`` the squared ncsnr), ``s = NC_n / (n (1 - NC_n))`` and
    ``NC_{n-1} = s / (s + 1/(n-1))``; NaN where the ceiling is NaN, 0 where it is 0.

    Examples
    --------
    >>> ceiling_of_fewer_repeats(np.array([0.75]), 3).round(4).tolist()  # ncsnr 1: 3 repeats -> 2
    [0.6667]
    """
    nc = np.clip(np.asarray(ceiling, dtype=np.float64), 0.0, 1.0 - 1e-12)
    snr2 = nc / (n_repeats * (1.0 - nc))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(snr2 > 0, snr2 / (snr2 + 1.0 / (n_repeats - 1)), np.nan)


def _cross_repeat_r2(
    model: SparseAutoencoder, experiment, test: str, test_stim: np.ndarray, keep: np.ndarray, test_ids: np.ndarray
) -> tuple[np.ndarray | None, int]:
    """Per voxel: the reconstruction of each test stimulus's first showing, scored against the mean of the others.

    The input's noise is then independent of the target's, as for an encoding model, so the
    score divided by the target's noise ceiling is bounded by 1 (in expectation). None when
    the test stimuli are not all shown the same number (at least 2) of times.
    """
    trials = experiment.trials_in_split(test)
    stimulus = experiment.responses.trial_stimulus[trials]
    position = {int(v): i for i, v in enumerate(test_stim)}
    conditions = np.array([position[int(v)] for v in stimulus])
    counts = np.bincount(conditions, minlength=len(test_stim))
    n = int(counts.min())
    if n < 2 or counts.max() != n:
        return None, n
    data = experiment.responses.data[trials][:, keep].astype(np.float64)
    repeat = repeat_partitions(conditions)
    first = np.empty((len(test_stim), data.shape[1]))
    first[conditions[repeat == 0]] = data[repeat == 0]
    rest = np.zeros_like(first)
    np.add.at(rest, conditions[repeat > 0], data[repeat > 0])
    return r2_score(rest / (n - 1), model.reconstruct(first, stimulus_ids=test_ids)), n


def _held_out_r2(standardised: list[np.ndarray], train_codes: np.ndarray, test_codes: np.ndarray) -> np.ndarray:
    """Per-voxel R^2 on the test rows of a linear reconstruction from a code, the decoder fitted on training rows."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    x_train, x_test = standardised
    decoder = LinearRegression().fit(train_codes, x_train)
    return r2_score(x_test, decoder.predict(test_codes), multioutput="raw_values")


def write_tables(ctx: StageContext) -> None:
    s = ctx.settings
    rows, latents, separability, embedding, dictionaries = [], [], [], [], {}
    for subject in s["subjects"]:
        for model in s["models"]:
            for seed in s["seeds"]:
                folder = ctx.input(sae_id(subject, model, seed))
                record = json.loads((folder / RECORD).read_text())
                keys = {"subject": subject, "model": model, "seed": seed}
                row = {**keys, "roi": "+".join(record["rois"])}
                row.update(_summary_row(record, s["labels"]))
                if (folder / "latents.parquet").is_file():
                    latents.append(pd.read_parquet(folder / "latents.parquet").assign(**keys))
                    sep = pd.read_parquet(folder / "separability.parquet").assign(**keys)
                    separability.append(sep)
                    first = sep[(sep["label"] == s["labels"][0]) & (sep["code"] == "sae")].iloc[0]
                    row.update(separability=float(first["balanced_accuracy"]), separability_p=float(first["p_value"]))
                rows.append(row)
                if (folder / "embedding.npz").is_file():
                    embedding.append(_embedding_rows(folder, keys))
                if seed == s["seeds"][0]:
                    name = f"{subject}/{model}"
                    dictionaries[f"{name}/dictionary"] = np.load(folder / "dictionary.npy")
                    dictionaries[f"{name}/voxel_index"] = np.load(folder / "voxel_index.npy")
    table = pd.DataFrame(rows)
    if latents:
        every = pd.concat(fdr_across(latents, column="p_permutation", name="p_fdr_across"), ignore_index=True)
        table = _with_selective(table, every, s["labels"])
        for name in [n for n in dictionaries if n.endswith("/dictionary")]:
            subject, model, _ = name.split("/")
            first = table[(table["subject"] == subject) & (table["model"] == model)].iloc[0]
            dictionaries[f"{subject}/{model}/selective"] = np.array(
                [first[f"selective_latent[{label}]"] for label in s["labels"]], dtype=np.int64
            )  # per label: the most selective latent of the first seed, -1 for none
        write_table(every, ctx.out, SAE_LATENTS)
        write_table(pd.concat(separability, ignore_index=True), ctx.out, SAE_SEPARABILITY)
    write_table(table, ctx.out, SAE)
    if embedding:
        write_table(pd.concat(embedding, ignore_index=True), ctx.out, SAE_EMBEDDING)
    np.savez(ctx.out / DICTIONARY_FILE, **dictionaries)


def _summary_row(record: dict, labels: list[str]) -> dict:
    sparsity = record["sparsity"]
    row = {
        "n_voxels": record["n_voxels"], "n_latents": record["n_latents"], "split": "test",
        "sparsity": sparsity["fraction_zero"], "l0_mean": sparsity["l0_mean"],
        "recon_r2_test": record["recon_r2_test"], "recon_r2_cross": record["recon_r2_cross"],
        "recon_nnr2_cross": record["recon_nnr2_cross"],
        "dead_units": record["dead_units"], "dead_units_test": record["dead_units_test"],
        "n_epochs": record["n_epochs"], "best_epoch": record["best_epoch"],
        "separability": np.nan, "separability_p": np.nan,
    }  # fmt: skip
    for name, value in record["recon_r2_baselines"].items():
        row[f"recon_r2_{name}"] = value
    for name, value in record.get("recovery", {}).items():
        row["recovery" if name == "sae" else f"recovery_{name}"] = value
    for label in labels:
        norm = record["norm_test"].get(label)
        row[f"norm_test_p[{label}]"] = norm["p_value"] if norm else np.nan
    return row


def _with_selective(table: pd.DataFrame, latents: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per row and label: how many latents are selective (FDR across every latent, subject, model and seed,
    AUC > 0.5), the most selective one (highest AUC; -1 for none) and the ROI holding most of its atom."""
    table = table.copy()
    for label in labels:
        found = {"latent": [], "n": [], "roi": [], "fraction": []}
        for _, row in table.iterrows():
            mine = latents[(latents["subject"] == row["subject"]) & (latents["model"] == row["model"])
                           & (latents["seed"] == row["seed"]) & (latents["label"] == label)]  # fmt: skip
            selective = mine[(mine["p_fdr_across"] < FDR_ALPHA) & (mine["auc"] > 0.5)]
            found["n"].append(len(selective))
            latent, roi, fraction = -1, None, np.nan
            if len(selective):
                best = selective.loc[selective["auc"].idxmax()]
                shares = best.filter(like="roi_fraction[").astype(float)
                latent, roi, fraction = int(best["latent"]), shares.idxmax()[len("roi_fraction[") : -1], shares.max()
            found["latent"].append(latent)
            found["roi"].append(roi)
            found["fraction"].append(float(fraction))
        table[f"n_selective[{label}]"] = found["n"]
        table[f"selective_latent[{label}]"] = found["latent"]
        table[f"selective_roi[{label}]"] = found["roi"]
        table[f"selective_fraction[{label}]"] = found["fraction"]
    return table


def _embedding_rows(folder, keys: dict) -> pd.DataFrame:
    stored = np.load(folder / "embedding.npz")
    parts = [
        pd.DataFrame({"stimulus": stored[f"{split}_stimuli"], "split": split, "x": stored[split][:, 0],
                      "y": stored[split][:, 1], "label": stored[f"{split}_labels"], "placed": split == "test"})
        for split in ("train", "test")
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True).assign(**keys)


def section(results: Results) -> list[Block]:
    if not results.has_table(SAE):
        return []
    table = results.table(SAE)
    columns = [c for c in ["subject", "model", "seed", "roi", "n_voxels", "n_latents", "recon_r2_test",
                           "recon_r2_cross", "recon_nnr2_cross", "recon_r2_pca", "sparsity", "l0_mean", "dead_units",
                           "separability", "separability_p", "recovery", "recovery_pca", "recovery_ica"]
               if c in table]  # fmt: skip
    blocks: list[Block] = [
        "<h2>Sparse autoencoders</h2><p>Each autoencoder is fitted on the repeat-averaged responses to the "
        "<b>training</b> stimuli (per-voxel standardisation and early stopping from them); every number here is "
        "from the <b>test</b> stimuli: the reconstruction R&sup2; (median over voxels; PCA of the same size for "
        "comparison; an autoencoder also reconstructs the noise of the response it encodes, so the cross-repeat "
        "R&sup2; reconstructs each stimulus's first showing and scores it against the mean of the others, and its "
        "noise-normalised form divides by that mean's noise ceiling), the sparsity of the codes, dead units (never "
        "active on the training stimuli), the "
        "separability of the classes from the codes (grouped cross-validation over the test stimuli, permutation "
        "p), and, in a simulation, the median best cosine of the true factors' voxel patterns with the "
        "dictionary's atoms (PCA and ICA of the same size for comparison).</p>",
        table_html(table[columns]),
        FigureBlock(
            "sae_overview",
            "Reconstruction, sparsity and recovery per model and seed (test stimuli).",
            figure_sae_overview(table),
        ),
    ]
    if results.has_table(SAE_LATENTS):
        latents = results.table(SAE_LATENTS)
        first = latents[(latents["model"] == latents["model"].iloc[0]) & (latents["seed"] == latents["seed"].iloc[0])]
        blocks.append(
            FigureBlock(
                "sae_selectivity",
                f"Latent selectivity of {first['model'].iloc[0]} (seed {first['seed'].iloc[0]}) on the test stimuli: "
                "each latent's AUC for the positive class; filled: Benjamini-Hochberg over every latent, subject, "
                f"model and seed (permutation p) below {FDR_ALPHA}.",
                figure_latent_selectivity(first),
            )
        )
        sep = results.table(SAE_SEPARABILITY)
        sep = sep[(sep["seed"] == sep["seed"].iloc[0])]
        shown = sep.assign(
            target=sep["label"], name=sep["code"], decoder=sep["model"], label=sep["model"] + ":" + sep["code"],
            p_corrected=sep["p_fwe"],
        )  # fmt: skip
        blocks.append(
            FigureBlock(
                "sae_separability",
                "Classes decoded from each code of the test stimuli (grouped CV, the same folds and permutations "
                "for every code): the autoencoder's latents, PCA, ICA and NMF of the same size, the voxels; "
                "* p < 0.05 corrected across the codes (max statistic).",
                figure_decoding_accuracy(shown, metric=shown["metric"].iloc[0]),
            )
        )
    if results.has_table(SAE_EMBEDDING):
        column = results.config["sae"].get("labels", [None])[0] if results.config["sae"].get("labels") else None
        for (subject, model), part in results.table(SAE_EMBEDDING).groupby(["subject", "model"], sort=False):
            blocks.append(
                FigureBlock(
                    f"sae_embedding_{subject}_{model}",
                    f"{subject}, {model}: one embedding of the training stimuli's codes (all classes in one fit), "
                    f"the test stimuli placed into it (outlined); colour: {column or 'none'}.",
                    figure_embedding(part[["x", "y"]].to_numpy(), part["label"].replace("", "unlabelled"),
                                     part["placed"].to_numpy(), model),
                )
            )  # fmt: skip
    blocks += _dictionary_figures(results, table)
    return blocks


def _dictionary_figures(results: Results, table: pd.DataFrame) -> list[Block]:
    """Each subject x model's dictionary over voxels, and its most label-selective atom on the cortical surface."""
    stored = np.load(results.layout.tables / DICTIONARY_FILE)
    report = results.config.get("report", {})
    roi_column = results.config["dataset"].get("roi_column", "roi")
    blocks: list[Block] = []
    surface = None
    for subject, model in dict.fromkeys(zip(table["subject"], table["model"], strict=True)):
        name = f"{subject}/{model}"
        dictionary, index = stored[f"{name}/dictionary"], stored[f"{name}/voxel_index"]
        selective = stored[f"{name}/selective"].tolist()  # per label, -1: none
        voxels = results.voxels(subject)
        blocks.append(
            FigureBlock(
                f"sae_dictionary_{subject}_{model}",
                f"{subject}, {model} (first seed): the dictionary mapped back to voxels (atoms over voxels grouped "
                "by ROI); arrows: the most label-selective latents.",
                figure_dictionary(
                    dictionary, voxels[roi_column].astype(str).to_numpy()[index], [k for k in selective if k >= 0]
                ),
            )
        )
        if not selective or selective[0] < 0 or "vertex" not in voxels or "hemisphere" not in voxels:
            continue
        surface = surface or load_surface(report.get("surface", "auto"), data_home())
        values = np.full(len(voxels), np.nan)
        values[index] = dictionary[selective[0]]
        limit = float(np.nanmax(np.abs(values))) or 1.0
        blocks.append(
            FigureBlock(
                f"sae_atom_surface_{subject}_{model}",
                f"{subject}, {model}: the atom of latent {selective[0]} (the most selective for "
                f"{results.config['sae']['labels'][0]}) on the inflated cortical surface.",
                figure_surface_map(
                    voxels_to_surface(values, voxels, surface.n_vertices), surface, f"{subject}: latent {selective[0]}",
                    tuple(report.get("views", ("lateral", "medial", "ventral"))), "RdBu_r", -limit, limit,
                    "atom weight (voxel units)",
                ),
            )
        )  # fmt: skip
    return blocks


SAE_ANALYSIS = Analysis("sae", plan, write_tables, section)
