"""The simulated dataset of a run, and the checks that the analysis recovered its ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scene2brain.data.containers import Experiment
from scene2brain.data.simulate import SimulationDrivers, SubjectConfig, make_stimuli, simulate_responses
from scene2brain.features.store import FeatureStore
from scene2brain.pipeline.config import GABOR, FeatureSection, SimulationSection
from scene2brain.pipeline.spaces import gabor_energy, gabor_pyramid, raw_features, reduced_space


def driver_spec(sim: SimulationSection) -> FeatureSection:
    """The network layer behind the simulated HV, FACE and CAL voxels (average-pooled, PCA for CAL)."""
    return FeatureSection(
        name="driver",
        model=sim.driver_model,
        layers=[sim.driver_layer],
        pooling="avg",
        reduction={"method": "pca", "n_components": sim.n_components},
    )


def simulate_subject(
    sim: SimulationSection,
    subject: int,
    seed: int,
    store: FeatureStore,
    progress: bool = False,
    prefetch: list[str] | None = None,
) -> Experiment:
    """Simulated subject ``subject`` (1, 2, ...): shared stimuli, its own voxels (seed + subject - 1).

    The drivers (Gabor energies, the driver layer and its PCA) go through the feature
    store with the same keys as a run's feature spaces, so they are computed once;
    ``prefetch`` names more layers of the driver model (average-pooled) to extract in
    the same pass, for the run's feature spaces.
    """
    stimuli, splits = make_stimuli(sim.n_stimuli, image_size=sim.image_size, seed=seed)
    images = stimuli.load_images()
    spec = driver_spec(sim)
    deep = raw_features(images, spec, spec.layers, store, progress, prefetch or [])[sim.driver_layer]
    calibration = reduced_space(deep, splits["train"], spec, seed)
    name = f"{sim.driver_model}:{sim.driver_layer}"
    drivers = SimulationDrivers(
        gabor_energy=gabor_energy(images, sim.gabor_size, store),
        gabor_channels=gabor_pyramid(sim.gabor_size).channels(),
        deep=deep,
        calibration=calibration,
        is_face=stimuli.table["is_face"].to_numpy(),
        names={"deep": name, "calibration": f"{name} (PCA {calibration.shape[1]})"},
    )
    config = SubjectConfig.scaled(sim.n_voxels)
    return simulate_responses(stimuli, splits, drivers, config, seed=seed + subject - 1, subject=f"sim{subject:02d}")


def ground_truth_checks(
    voxels: pd.DataFrame, features: list[FeatureSection], sim: SimulationSection
) -> dict[str, dict]:
    """Did the analysis recover what the simulation put in?

    ``voxels`` is a subject's result table (``roi``, ``true_noise_ceiling``,
    ``noise_ceiling``, ``r[<space>]`` and ``nnacc[<space>]``); ROIs are judged by
    noise-normalised accuracy, or by r when there is no noise ceiling. Checks whose feature space is
    not part of the run are left out.
    """
    gabor = [f.space("energy") for f in features if f.model == GABOR]
    drivers = [
        f for f in features if f.model == sim.driver_model and sim.driver_layer in f.layers and f.pooling == "avg"
    ]
    driver = [f.space(sim.driver_layer) for f in drivers]
    # CAL voxels are exactly linear only in the driver layer reduced as the simulation reduced it.
    same_pca = [f.space(sim.driver_layer) for f in drivers if f.reduction == driver_spec(sim).reduction]
    prefix = "nnacc[" if voxels["noise_ceiling"].notna().any() else "r["
    medians = {
        roi: {c[len(prefix) : -1]: np.nanmedian(g[c]) for c in g.columns if c.startswith(prefix)}
        for roi, g in voxels.groupby("roi", sort=False)
    }
    best = {roi: max(m, key=m.get) for roi, m in medians.items()}
    checks: dict[str, dict] = {}
    if gabor and "EV" in best:
        checks["EV is best predicted by Gabor features"] = {"passed": best["EV"] in gabor, "found": best["EV"]}
    if driver and "HV" in best:
        checks[f"HV is best predicted by {driver[0]}"] = {"passed": best["HV"] in driver, "found": best["HV"]}
    cal = voxels[voxels["roi"] == "CAL"]
    if same_pca and len(cal):
        r = cal[f"r[{same_pca[0]}]"].to_numpy()
        recovered = float(np.nanmedian(np.clip(r, 0, None) ** 2 / cal["true_noise_ceiling"].to_numpy()))
        checks["CAL voxels reach >= 80% of the true noise ceiling (median r^2 / NC)"] = {
            "passed": recovered >= 0.8,
            "found": round(recovered, 3),
        }
    if voxels["noise_ceiling"].notna().all():
        nc_r = float(np.corrcoef(voxels["noise_ceiling"], voxels["true_noise_ceiling"])[0, 1])
        nc_err = float(np.median(np.abs(voxels["noise_ceiling"] - voxels["true_noise_ceiling"])))
        checks["estimated noise ceiling tracks the truth (r > 0.8)"] = {
            "passed": nc_r > 0.8,
            "found": {"correlation": round(nc_r, 3), "median_abs_error": round(nc_err, 3)},
        }
    return checks
