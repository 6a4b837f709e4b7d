"""Run configurations: validation messages name the key and what is allowed."""

import tomllib

import pytest
import tomli_w

from scene2brain.pipeline.config import ConfigError, load_config, packaged_config

BASE = {
    "run": {"output": "results"},
    "dataset": {"name": "simulated"},
    "features": [{"name": "effnet", "model": "efficientnet-lite0", "layers": ["_blocks.6", "head"]}],
}


def write(tmp_path, data, name="study.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def error_of(tmp_path, data) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    return str(info.value)


def with_section(section, values):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    data[section] = {**data.get(section, {}), **values}
    return data


def test_valid_config_resolves_paths_and_spaces(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.run.output == (tmp_path / "results").resolve()
    assert config.spaces() == ["effnet:_blocks.6", "effnet:head"]
    assert config.encoder.model == "ridge" and config.evaluation.noise_ceiling == "repeats"
    assert config.features[0].reduction.method == "pca"


def test_unknown_key_lists_allowed_keys(tmp_path):
    message = error_of(tmp_path, with_section("encoder", {"alpha": [1.0]}))
    assert "study.toml" in message
    assert "encoder.alpha: unknown key" in message
    assert "allowed keys: model, alphas, cv, backend, device, options" in message


def test_value_outside_allowed_values_names_them(tmp_path):
    message = error_of(tmp_path, with_section("encoder", {"model": "lassoo"}))
    assert "encoder.model" in message and "'ridge'" in message and "'lasso'" in message and "'bottleneck'" in message
    message = error_of(tmp_path, with_section("evaluation", {"noise_ceiling": "split-half"}))
    assert "evaluation.noise_ceiling" in message and "'repeats', 'ncsnr' or 'none'" in message


def test_errors_inside_feature_lists_name_the_entry(tmp_path):
    data = dict(BASE)
    data["features"] = [
        BASE["features"][0],
        {"name": "gabor", "model": "gabor", "reduction": {"method": "ica"}},
        {"name": "clip", "model": "clip-vit-b-32", "extra": 1},
    ]
    message = error_of(tmp_path, data)
    assert "features[1].reduction.method" in message and "'pca', 'srp' or 'standardise'" in message
    assert "features[2].extra: unknown key" in message and "layers" in message


def test_dataset_rules(tmp_path):
    assert "dataset: required key is missing" in error_of(tmp_path, {"features": BASE["features"]})
    message = error_of(tmp_path, with_section("dataset", {"name": "nsd"}))
    assert "path is required for dataset 'nsd'" in message
    message = error_of(tmp_path, with_section("dataset", {"name": "hcp"}))
    assert "dataset.name" in message and "'algonauts2023'" in message and "'bold5000'" in message
    message = error_of(tmp_path, with_section("dataset", {"simulation": {"n_stimuli": 10}}))
    assert "dataset.simulation.n_stimuli" in message and "greater than or equal to 60" in message


def test_own_stimuli_rules(tmp_path):
    simulation = {"stimuli": str(tmp_path), "n_stimuli": 500}
    message = error_of(tmp_path, with_section("dataset", {"name": "simulated", "simulation": simulation}))
    assert "n_stimuli counts the bundled photographs; with `stimuli` every image is used" in message


def test_cross_field_rules(tmp_path):
    message = error_of(tmp_path, with_section("report", {"compare": ["effnet:head", "gabor:energy"]}))
    assert "report.compare" in message and "['gabor:energy']" in message and "effnet:_blocks.6" in message
    message = error_of(tmp_path, with_section("splits", {"train": "test"}))
    assert "train and test must be different splits" in message
    data = dict(BASE)
    data["features"] = [BASE["features"][0], BASE["features"][0]]
    assert "each name once" in error_of(tmp_path, data)
    data["features"] = [{"name": "g", "model": "gabor", "layers": ["conv1"]}]
    assert "features[0]: layers: gabor has the layers ['energy']; got ['conv1']" in error_of(tmp_path, data)
    data["features"] = [{"name": "g", "model": "gabor", "options": {"size": 3}}]
    message = error_of(tmp_path, data)
    assert "options: ['size'] are not options of gabor (its options: ['image_size', 'aperture'])" in message
    data["features"] = [{"name": "g", "model": "gabor", "weights": "random"}]
    assert "features[0]: weights: gabor has no weights (it is fixed); got 'random'" in error_of(tmp_path, data)
    data["features"] = [{"name": "x", "model": "no-such-net"}]
    assert "features[0].model: unknown model 'no-such-net'" in error_of(tmp_path, data)


def test_unreadable_files(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[run\noutput = 1")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing.toml: configuration file not found"):
        load_config(tmp_path / "missing.toml")


def test_overrides_merge_nested_sections(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(path, {"dataset": {"simulation": {"n_voxels": 99}}, "run": {"seed": 3}})
    assert config.dataset.simulation.n_voxels == 99 and config.dataset.simulation.n_stimuli == 1200
    assert config.run.seed == 3 and config.dataset.name == "simulated"


def test_packaged_demo_config_is_valid_and_round_trips(tmp_path):
    config = load_config(packaged_config("demo"))
    assert config.spaces() == [
        "gabor:energy", "effnet:_blocks.2", "effnet:_blocks.6", "effnet:_blocks.10", "effnet:head"
    ]  # fmt: skip
    again = load_config(write(tmp_path, config.to_dict()))
    assert again == config
    assert tomllib.loads(tomli_w.dumps(config.to_dict()))["dataset"]["simulation"]["n_voxels"] == 2000


def test_feature_entry_values_are_checked_before_anything_runs(tmp_path):
    """Reduction keys, option types, poolings: each error names the key and what is allowed, with no input dump."""
    data = dict(BASE)
    data["features"] = [{"name": "e", "model": "efficientnet-lite0", "reduction": {"method": "pca", "n_comp": 8}}]
    message = error_of(tmp_path, data)
    assert "features[0].reduction.n_comp: unknown key; allowed keys: method, n_components, standardise" in message
    data["features"] = [{"name": "g", "model": "gabor", "options": {"image_size": "big"}}]
    message = error_of(tmp_path, data)
    assert "features[0]: options.image_size: expected int for gabor, got 'big'" in message and "{" not in message
    data["features"] = [{"name": "g", "model": "gabor", "options": {"aperture": "yes"}}]
    assert "options.aperture: expected bool for gabor, got 'yes'" in error_of(tmp_path, data)
    data["features"] = [{"name": "e", "model": "efficientnet-lite0", "pooling": "median"}]
    message = error_of(tmp_path, data)
    assert "features[0].pooling: expected one of flatten, avg, max" in message and "'median'" in message
    data["features"] = [{"name": "g", "model": "gabor", "reduction": {"method": "standardise", "n_components": 8}}]
    assert "n_components: 'standardise' keeps every column" in error_of(tmp_path, data)


def test_every_problem_is_reported_in_one_pass(tmp_path):
    """Field errors used to hide the cross-field ones (layers, simulated splits) until they were fixed."""
    from scene2brain.pipeline.config import ConfigError, parse_config

    data = {
        "run": {"output": "out", "colour": "red"},
        "dataset": {"name": "simulated"},
        "splits": {"test": "val"},
        "features": [
            {"name": "a", "model": "no-such-net"},
            {"name": "b", "model": "gabor", "layers": ["conv1"], "pooling": "median"},
        ],
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, "study.toml")
    message = str(err.value)
    for culprit in ("colour", "no-such-net", "median", "conv1", "splits.test: 'val'"):
        assert culprit in message, culprit
