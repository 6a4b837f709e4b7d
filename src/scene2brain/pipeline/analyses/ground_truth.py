"""Ground-truth checks of a simulated run: did the analysis recover what the simulation put in?

Runs only on simulated data. Reads the per-voxel tables the encoding analysis wrote
(``r[<space>]``, ``nnacc[<space>]``, ``noise_ceiling`` beside the simulation's
``roi`` and ``true_noise_ceiling``) and, when the run has them, the decoding, RSA and
sparse-autoencoder tables, and writes ``checks.json``. Checks of an analysis the configuration does not ask
for are "disabled" (and say so); checks whose inputs are missing "not run" (a failure).
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd

from scene2brain.evaluation.noise_ceiling import primary_score
from scene2brain.pipeline.analyses.encoding import scores_id
from scene2brain.pipeline.analysis import Analysis, TableNeeds
from scene2brain.pipeline.config import SIMULATED, RunConfig
from scene2brain.pipeline.graph import Ref, StageContext
from scene2brain.pipeline.plan import Plan
from scene2brain.pipeline.simulated import driver_specs
from scene2brain.report.html import Block, FigureBlock
from scene2brain.results import (
    CHECKS_FILE,
    DECODING,
    DECODING_BLUR,
    ENCODERS_TABLE,
    RSA,
    RSA_PAIRWISE,
    SAE,
    Results,
    space_column,
    voxels_table,
)
from scene2brain.viz.figures import figure_noise_ceiling_truth


def driver_spaces(config: RunConfig) -> dict[str, list[str]]:
    """The run's feature spaces that hold each simulation driver.

    ``gabor``: every Gabor-pyramid space; ``deep``: the driver layer of the driver model,
    average-pooled; ``calibration``: those of ``deep`` reduced as the simulation reduced
    them (the only spaces in which the CAL voxels are exactly linear).
    """
    gabor, deep = driver_specs(config)
    layer = deep.layer_names()[0]
    deep_specs = [
        f for f in config.features if (f.model, f.pooling) == (deep.model, deep.pooling) and layer in f.layer_names()
    ]
    return {
        "gabor": [f.space(layer) for f in config.features if f.model == gabor.model for layer in f.layer_names()],
        "deep": [f.space(layer) for f in deep_specs],
        "calibration": [f.space(layer) for f in deep_specs if f.reduction == deep.reduction],
    }


PASS, FAIL, NOT_RUN, DISABLED = "pass", "fail", "not run", "disabled"
NC_MAX_MEDIAN_ERROR = 0.1  # median |estimated - true| noise ceiling
NC_MAX_BIAS = 0.05  # |median (estimated - true)|
NC_MIN_CORRELATION = 0.8
FACE_P = 0.01  # FACE must decode face vs non-face with a corrected p below this
BLIND_P = 0.05  # BLIND must not: its corrected p at least this (a true null fails this in <= 5% of seeds)
FACE_LABELS = ("face", "is_face")  # the simulation's face label columns
RSA_P = 0.05  # the paired bootstrap comparison of the expected space with the other one
MIN_PERMUTATIONS = 100  # the smallest p-value is 1 / (n + 1): below FACE_P only with n >= 100
NONLINEAR_ENCODER = "bottleneck"  # the nonlinear encoder of the nonlinear-hv check
SAE_MIN_RECOVERY = 0.8  # median over true factors of the best cosine with a dictionary atom, every seed


def winner(medians: dict[str, float]) -> tuple[str | None, list[str]]:
    """The space with the highest finite median, and the spaces whose median is NaN (which never win)."""
    finite = {k: v for k, v in medians.items() if np.isfinite(v)}
    return (max(finite, key=finite.get) if finite else None), [k for k in medians if k not in finite]


def checks_passed(checks: dict[str, dict[str, dict]]) -> bool:
    """True when every check of every subject passed or was disabled (a check that did not run fails)."""
    statuses = [c["status"] for subject in checks.values() for c in subject.values()]
    return bool(statuses) and all(status in (PASS, DISABLED) for status in statuses)


def ground_truth_checks(
    voxels: pd.DataFrame, spaces: dict[str, list[str]], skip: list[str] | tuple[str, ...] = ()
) -> dict[str, dict]:
    """The checks of one subject's per-voxel table.

    Every check of :data:`GROUND_TRUTH_CHECKS` is reported: ``status`` is "pass", "fail",
    "not run" (its inputs are missing: a feature space, an ROI or a noise ceiling; this
    counts as a failure) or "disabled" (listed in ``skip``). ``found`` holds what it saw.
    """
    score = primary_score(voxels["noise_ceiling"].to_numpy())
    columns = {space_column(score, space): space for space in _spaces_in(voxels, score)}
    by_roi = voxels.groupby("roi", sort=False)[list(columns)].median().rename(columns=columns)  # NaN: no score
    medians = {roi: row.to_dict() for roi, row in by_roi.iterrows()}
    checks: dict[str, dict] = {}
    record = _recorder(checks, skip)

    for check, roi, wanted, what in (
        ("ev-gabor", "EV", spaces["gabor"], "Gabor features"),
        ("hv-driver", "HV", spaces["deep"], spaces["deep"][0] if spaces["deep"] else "the driver layer"),
    ):
        title = f"{roi} is best predicted by {what} (median {score})"
        if not wanted or roi not in medians:
            record(check, title, None, None, f"not run: no {'feature space' if not wanted else roi + ' voxels'}")
            continue
        if not set(medians[roi]) - set(wanted):  # nothing to beat: the check could not fail
            record(check, title, None, None, "not run: no other feature space to compare with")
            continue
        best, nan = winner(medians[roi])
        found = {"best": best, "median": round(medians[roi][best], 3) if best else None, "nan": nan}
        record(check, title, best in wanted, found)

    title = "CAL voxels reach >= 80% of the true noise ceiling (median r^2 / NC)"
    cal = voxels[voxels["roi"] == "CAL"]
    if spaces["calibration"] and len(cal):
        r = cal[space_column("r", spaces["calibration"][0])].to_numpy()
        recovered = float(pd.Series(np.clip(r, 0, None) ** 2 / cal["true_noise_ceiling"].to_numpy()).median())
        record("cal-ceiling", title, bool(recovered >= 0.8), round(recovered, 3))
    else:
        record("cal-ceiling", title, None, None, "not run: " + ("no CAL voxels" if not len(cal) else "no space"))

    title = (
        f"estimated noise ceiling tracks the truth (r > {NC_MIN_CORRELATION}, median |error| <= "
        f"{NC_MAX_MEDIAN_ERROR}, |bias| <= {NC_MAX_BIAS})"
    )
    if voxels["noise_ceiling"].notna().all():
        error = (voxels["noise_ceiling"] - voxels["true_noise_ceiling"]).to_numpy()
        nc_r = float(np.corrcoef(voxels["noise_ceiling"], voxels["true_noise_ceiling"])[0, 1])
        found = {
            "correlation": round(nc_r, 3),
            "median_abs_error": round(float(np.median(np.abs(error))), 3),
            "bias": round(float(np.median(error)), 3),
        }
        passed = (
            nc_r > NC_MIN_CORRELATION
            and found["median_abs_error"] <= NC_MAX_MEDIAN_ERROR
            and abs(found["bias"]) <= NC_MAX_BIAS
        )
        record("noise-ceiling", title, bool(passed), found)
    else:
        record("noise-ceiling", title, None, None, "not run: no noise ceiling estimated (evaluation.noise_ceiling)")
    return checks


def _recorder(checks: dict[str, dict], skip: list[str] | tuple[str, ...]):
    """A function that records one check's outcome in ``checks`` (None: not run; ``skip``: disabled)."""

    def record(check: str, title: str, passed: bool | None, found: object, missing: str = "") -> None:
        if check in skip:
            status = DISABLED
        elif passed is None:
            status = NOT_RUN
        else:
            status = PASS if passed else FAIL
        checks[title] = {
            "id": check, "status": status, "passed": status == PASS, "found": missing if passed is None else found
        }  # fmt: skip

    return record


def decoding_checks(
    decoding: pd.DataFrame | None,
    blur: pd.DataFrame | None,
    spaces: dict[str, list[str]],
    label: str | None,
    skip: list[str] | tuple[str, ...] = (),
) -> dict[str, dict]:
    """Face vs non-face decodes from FACE (p < 0.01) and not from BLIND; the probe's accuracy falls with blur.

    ``decoding`` / ``blur`` are one subject's rows of the decoding tables (None when the run
    has no ``[decoding]``, or no blur protocol: those checks are disabled); ``label`` the
    decoded column.
    """
    checks: dict[str, dict] = {}
    if decoding is None:
        skip = [*skip, "face-decoding", "blind-decoding", "blur-probe"]
    elif blur is None:
        skip = [*skip, "blur-probe"]
    record = _recorder(checks, skip)
    face_label = label in FACE_LABELS
    rois = decoding[decoding["kind"] == "roi"] if decoding is not None else None
    for check, roi, title, rule in (
        ("face-decoding", "FACE", f"face vs non-face decoded from FACE (corrected p < {FACE_P})",
         lambda r: r["p_corrected"] < FACE_P and r["balanced_accuracy"] > r["chance"]),
        ("blind-decoding", "BLIND", f"face vs non-face not decoded from BLIND (corrected p >= {BLIND_P})",
         lambda r: r["p_corrected"] >= BLIND_P),
    ):  # fmt: skip
        if rois is None:
            record(check, title, None, None, "disabled: the run has no [decoding]")
        elif not face_label:
            record(check, title, None, None, f"not run: decoding.labels is {label!r}, not one of {FACE_LABELS}")
        elif roi not in set(rois["roi"]) or rois.loc[rois["roi"] == roi, "p_corrected"].isna().all():
            record(check, title, None, None, f"not run: no {roi} row with a permutation p-value")
        elif (n := int(rois["n_permutations"].iloc[0])) < MIN_PERMUTATIONS:
            # with n permutations no p-value is below 1 / (n + 1): a check could not pass (FACE) or fail (BLIND)
            record(check, title, None, None, f"not run: {n} permutations; these checks need >= {MIN_PERMUTATIONS}")
        else:
            row = rois[rois["roi"] == roi].iloc[0]
            found = {k: round(float(row[k]), 4) for k in ("balanced_accuracy", "chance", "p_value", "p_corrected")}
            record(check, title, bool(rule(row)), found)
    title = "the probe's accuracy falls with Gaussian blur (largest sigma's interval below the unblurred accuracy)"
    gaussian = blur[blur["blur"] == "gaussian"] if blur is not None else None
    if decoding is None or blur is None:
        reason = "the run has no [decoding]" if decoding is None else "decoding.blur_spaces is empty"
        record("blur-probe", title, None, None, f"disabled: {reason}")
    elif gaussian["level"].nunique() < 2 or "ci_high" not in gaussian:
        record("blur-probe", title, None, None, "not run: no blur curve with two sigmas and bootstrap intervals")
    else:
        preferred = [sp for sp in spaces["deep"] if sp in set(gaussian["space"])]
        curve = gaussian[gaussian["space"] == (preferred[0] if preferred else gaussian["space"].iloc[0])]
        curve = curve.sort_values("level")
        metric = decoding["metric"].iloc[0] if "metric" in decoding else "balanced_accuracy"
        clean, blurred = curve.iloc[0], curve.iloc[-1]
        found = {"space": clean["space"], "sigma": [float(clean["level"]), float(blurred["level"])],
                 metric: [round(float(clean[metric]), 3), round(float(blurred[metric]), 3)],
                 "blurred_ci_high": round(float(blurred["ci_high"]), 3)}  # fmt: skip
        record("blur-probe", title, bool(blurred["ci_high"] < clean[metric]), found)
    return checks


def rsa_checks(
    rsa: pd.DataFrame | None,
    pairwise: pd.DataFrame | None,
    spaces: dict[str, list[str]],
    skip: list[str] | tuple[str, ...] = (),
) -> dict[str, dict]:
    """EV's RDM is closer to Gabor than to the driver layer and HV's the other way, significantly.

    ``rsa`` and ``pairwise`` are one subject's rows of the RSA tables (None when the run has
    no ``[rsa]``). The comparison is the paired bootstrap test of the two similarities
    (the same stimulus resamples for both; uncorrected p < ``RSA_P``), more powerful than
    asking their separate intervals not to overlap; ``found`` gives both intervals.
    """
    checks: dict[str, dict] = {}
    record = _recorder(checks, [*skip, "rsa-ev-gabor", "rsa-hv-driver"] if rsa is None else skip)
    gabor, deep = (spaces["gabor"] or [None])[0], (spaces["deep"] or [None])[0]
    for check, roi, better, worse in (("rsa-ev-gabor", "EV", gabor, deep), ("rsa-hv-driver", "HV", deep, gabor)):
        title = (
            f"{roi}'s RDM is closer to {better or 'the expected space'} than to {worse or 'the other'} "
            f"(paired bootstrap p < {RSA_P})"
        )
        if rsa is None or pairwise is None:
            record(check, title, None, None, "disabled: the run has no [rsa]")
            continue
        rows = rsa[rsa["roi"] == roi].set_index("space")
        pair = pairwise[(pairwise["roi"] == roi) & (
            ((pairwise["space_a"] == better) & (pairwise["space_b"] == worse))
            | ((pairwise["space_a"] == worse) & (pairwise["space_b"] == better))
        )]  # fmt: skip
        if better is None or worse is None or not {better, worse} <= set(rows.index) or pair["p_value"].isna().all():
            record(check, title, None, None, f"not run: needs {roi} rows for a Gabor space and the driver layer, "
                   "with bootstrap comparisons")  # fmt: skip
            continue
        b, w, p_value = rows.loc[better], rows.loc[worse], float(pair["p_value"].iloc[0])
        found = {better: [round(float(b[k]), 3) for k in ("similarity", "ci_low", "ci_high")],
                 worse: [round(float(w[k]), 3) for k in ("similarity", "ci_low", "ci_high")],
                 "p_value": round(p_value, 4)}  # fmt: skip
        record(check, title, bool(b["similarity"] > w["similarity"] and p_value < RSA_P), found)
    return checks


def sae_checks(sae: pd.DataFrame | None, skip: list[str] | tuple[str, ...] = ()) -> dict[str, dict]:
    """The sparse autoencoder recovers the simulated sparse factors, and finds face latents in FACE.

    ``sae`` is one subject's rows of the ``sae`` table (None when the run has no ``[sae]``:
    both checks disabled). Every model and seed must pass: recovery (median best cosine of
    the true SPARSE factors' voxel patterns with the dictionary's atoms) at least
    :data:`SAE_MIN_RECOVERY` and above PCA's and ICA's of the same size; and the latent most
    selective for faces (FDR-significant, AUC > 0.5, on the test stimuli) has most of its
    atom's squared norm in FACE voxels.
    """
    checks: dict[str, dict] = {}
    record = _recorder(checks, [*skip, "sae-recovery", "sae-face"] if sae is None else skip)
    title = (
        f"the sparse autoencoder recovers the SPARSE factors (median best cosine >= {SAE_MIN_RECOVERY}, above PCA "
        "and ICA; every seed)"
    )
    if sae is None:
        record("sae-recovery", title, None, None, "disabled: the run has no [sae]")
    elif "recovery" not in sae or sae["recovery"].isna().all():
        record("sae-recovery", title, None, None, "not run: no SPARSE voxels (sparse_factor_*) among sae.rois")
    elif not {"recovery_pca", "recovery_ica"} <= set(sae.columns):
        record("sae-recovery", title, None, None, "not run: needs the pca and ica baselines (sae.baselines)")
    else:
        values = sae[["model", "seed", "recovery", "recovery_pca", "recovery_ica"]]
        passed = (
            (values["recovery"] >= SAE_MIN_RECOVERY)
            & (values["recovery"] > values["recovery_pca"])
            & (values["recovery"] > values["recovery_ica"])
        )
        found = [{k: (round(float(v), 3) if isinstance(v, float) else v) for k, v in row.items()}
                 for row in values.to_dict("records")]  # fmt: skip
        record("sae-recovery", title, bool(passed.all()), found)
    title = "the sparse autoencoder's most face-selective latent has its atom in FACE (every seed)"
    columns = [
        f"selective_roi[{label}]" for label in FACE_LABELS if sae is not None and f"selective_roi[{label}]" in sae
    ]
    if sae is None:
        record("sae-face", title, None, None, "disabled: the run has no [sae]")
    elif not columns:
        record("sae-face", title, None, None, f"not run: sae.labels has none of {FACE_LABELS}")
    elif not sae["roi"].str.split("+").map(lambda rois: "FACE" in rois).all():
        record("sae-face", title, None, None, "not run: no FACE voxels among sae.rois")
    else:
        found = [{"model": m, "seed": int(seed), "roi": roi}
                 for m, seed, roi in zip(sae["model"], sae["seed"], sae[columns[0]], strict=True)]  # fmt: skip
        record("sae-face", title, bool((sae[columns[0]] == "FACE").all()), found)
    return checks


def encoder_checks(
    encoders: pd.DataFrame | None, spaces: dict[str, list[str]], skip: list[str] | tuple[str, ...] = ()
) -> dict[str, dict]:
    """A nonlinear encoder beats voxelwise ridge where the simulation is nonlinear, and not where it is linear.

    ``encoders`` is one subject's rows of the ``encoders`` table (None when the run has no
    ``[[encoders]]``). On a driver space (the simulation's deep features), the bottleneck
    network's paired bootstrap difference from ``[encoder]`` (which must be voxelwise ridge)
    must lie above 0 in HV (nonlinear mixtures of those features) while ridge stays at least as
    good in CAL (exactly linear): the network's difference there is not above 0 (its interval
    reaches 0 or below). With several bottleneck entries, the first on a driver space is checked.
    """
    checks: dict[str, dict] = {}
    networks = encoders[encoders["model"] == NONLINEAR_ENCODER] if encoders is not None else None
    disabled = networks is None or networks.empty
    record = _recorder(checks, [*skip, "nonlinear-hv"] if disabled else skip)
    title = (
        f"the {NONLINEAR_ENCODER} network beats voxelwise ridge in HV on the driver's features (paired bootstrap "
        "interval above 0) and ridge stays at least as good in CAL (the network's interval not above 0)"
    )
    if disabled:
        record("nonlinear-hv", title, None, None, f"disabled: no [[encoders]] entry with model = {NONLINEAR_ENCODER!r}")
        return checks
    primary = encoders.loc[encoders["primary"], "model"] if "primary" in encoders else encoders.iloc[:0]["model"]
    rows = networks[networks["space"].isin(spaces["deep"])]
    rows = rows[rows["encoder"] == rows["encoder"].iloc[0]] if len(rows) else rows  # the first such entry
    if primary.empty or primary.iloc[0] != "ridge":
        record("nonlinear-hv", title, None, None, "not run: [encoder] model is not 'ridge'")
    elif not {"HV", "CAL"} <= set(rows["roi"]) or rows["diff_low"].isna().any():
        record("nonlinear-hv", title, None, None, f"not run: needs HV and CAL rows with bootstrap intervals on a "
               f"driver space {spaces['deep']}")  # fmt: skip
    else:
        first = rows[rows["space"] == rows["space"].iloc[0]].set_index("roi")
        hv, cal = first.loc["HV"], first.loc["CAL"]
        found = {"space": str(rows["space"].iloc[0]), "encoder": str(hv["encoder"])}
        for roi, row in (("HV", hv), ("CAL", cal)):
            found[roi] = {k: round(float(row[k]), 3) for k in ("diff", "diff_low", "diff_high")}
        record("nonlinear-hv", title, bool(hv["diff_low"] > 0 and cal["diff_low"] <= 0), found)
    return checks


def _spaces_in(voxels: pd.DataFrame, score: str) -> list[str]:
    prefix = f"{score}["
    return [c[len(prefix) : -1] for c in voxels.columns if c.startswith(prefix)]


def plan(p: Plan) -> TableNeeds | None:
    if p.config.dataset.name != SIMULATED:
        return None
    inputs = [Ref(scores_id(subject, space.name)) for subject in p.subjects for space in p.spaces(subject)]
    skip = p.config.dataset.simulation.skip_checks
    settings = {
        "subjects": p.subjects,
        "spaces": driver_spaces(p.config),
        "skip": skip,
        "label": p.config.decoding.labels if p.config.decoding is not None else None,
    }
    return TableNeeds(settings, inputs)


def write_tables(ctx: StageContext) -> None:
    s = ctx.settings

    def rows(name: str, subject: str) -> pd.DataFrame | None:
        path = ctx.out / f"{name}.parquet"
        if not path.is_file():
            return None
        table = pd.read_parquet(path)
        return table[table["subject"] == subject]

    checks = {}
    for subject in s["subjects"]:
        voxels = pd.read_parquet(ctx.out / f"{voxels_table(subject)}.parquet")
        checks[subject] = {
            **ground_truth_checks(voxels, s["spaces"], s["skip"]),
            **decoding_checks(
                rows(DECODING, subject), rows(DECODING_BLUR, subject), s["spaces"], s["label"], s["skip"]
            ),
            **rsa_checks(rows(RSA, subject), rows(RSA_PAIRWISE, subject), s["spaces"], s["skip"]),
            **sae_checks(rows(SAE, subject), s["skip"]),
            **encoder_checks(rows(ENCODERS_TABLE, subject), s["spaces"], s["skip"]),
        }
    (ctx.out / CHECKS_FILE).write_text(json.dumps(checks, indent=2))


def section(results: Results) -> list[Block]:
    if not results.checks:
        return []
    rows = "".join(
        f"<tr><td>{html.escape(subject)}</td><td class='{'pass' if c['status'] in (PASS, DISABLED) else 'fail'}'>"
        f"{c['status'].upper()}</td><td>{html.escape(name)}</td>"
        f"<td>{html.escape(json.dumps(c['found']))}</td></tr>"
        for subject, checks in results.checks.items()
        for name, c in checks.items()
    )
    blocks: list[Block] = [
        "<h2>Ground-truth checks (simulated data)</h2><table class='t'><tr><th>subject</th><th>result</th>"
        f"<th>check</th><th>found</th></tr>{rows}</table>"
    ]
    roi_column = results.config["dataset"].get("roi_column", "roi")
    for subject in results.subjects:
        voxels = results.voxels(subject)
        if "true_noise_ceiling" in voxels and voxels["noise_ceiling"].notna().all():
            blocks.append(
                FigureBlock(
                    f"noise_ceiling_truth_{subject}",
                    "Simulated data: the noise ceiling estimated from repeats against the true one.",
                    figure_noise_ceiling_truth(voxels, roi_column),
                )
            )
    return blocks


GROUND_TRUTH = Analysis("ground_truth", plan, write_tables, section)
