"""Stage keys change when, and only when, a declared setting or input changes."""

import copy
import json

import numpy as np
import pytest
from run_fixtures import SMALL

from scene2brain.pipeline.config import _merge, parse_config
from scene2brain.pipeline.executor import run_local
from scene2brain.pipeline.graph import Ref, Stage, StageContext, StageGraph, StageId
from scene2brain.pipeline.run import plan_run


def write_settings(ctx: StageContext) -> None:
    (ctx.out / "settings.json").write_text(json.dumps(dict(ctx.settings)))
    for name in ctx.outputs:
        (ctx.output(name) / "part.txt").write_text(name)


def read_undeclared(ctx: StageContext) -> None:
    ctx.input("not-declared")


def _toy(settings):
    """a (two outputs x, y) -> b reads a#x -> c; d reads a#y; e independent."""
    return StageGraph(
        [
            Stage(StageId("a"), write_settings, settings["a"], outputs={"x": settings["a.x"], "y": settings["a.y"]}),
            Stage(StageId("b"), write_settings, settings["b"], {"in": Ref(StageId("a"), "x")}),
            Stage(StageId("c"), write_settings, settings["c"], {"in": Ref(StageId("b"))}),
            Stage(StageId("d"), write_settings, settings["d"], {"in": Ref(StageId("a"), "y")}),
            Stage(StageId("e"), write_settings, settings["e"]),
        ]
    )


def _changed(before: StageGraph, after: StageGraph) -> set[str]:
    k0, k1 = before.keys(), after.keys()
    return {str(ref.stage) for ref in k0 if ref.output is None and k0[ref] != k1[ref]}


BASE = {
    "a": {"n": 1},
    "a.x": {"layer": "x"},
    "a.y": {"layer": "y"},
    "b": {"m": 2},
    "c": {},
    "d": {"k": 3},
    "e": {"z": 0},
}


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("a", {"a", "b", "c", "d"}),  # shared settings: every reader of any output
        ("a.x", {"a", "b", "c"}),  # one output's settings: only its readers
        ("a.y", {"a", "d"}),
        ("b", {"b", "c"}),
        ("c", {"c"}),
        ("d", {"d"}),
        ("e", {"e"}),
    ],
)
def test_toy_graph_keys_change_exactly_with_declarations(setting, expected):
    changed = copy.deepcopy(BASE)
    changed[setting] = {**changed[setting], "new": 1}
    assert _changed(_toy(BASE), _toy(changed)) == expected
    assert _changed(_toy(BASE), _toy(copy.deepcopy(BASE))) == set()


def test_graph_rejects_undeclared_inputs_unknown_outputs_and_local_functions():
    graph = StageGraph([Stage(StageId("a"), write_settings, outputs={"x": {}})])
    with pytest.raises(ValueError, match=r"stage c reads b \('in'\), which is not defined before it"):
        graph.add(Stage(StageId("c"), write_settings, inputs={"in": Ref(StageId("b"))}))
    with pytest.raises(ValueError, match=r"reads output 'z' of a, which has \['x'\]"):
        graph.add(Stage(StageId("c"), write_settings, inputs={"in": Ref(StageId("a"), "z")}))
    with pytest.raises(ValueError, match="defined twice"):
        graph.add(Stage(StageId("a"), write_settings))
    with pytest.raises(ValueError, match="module-level function"):
        Stage(StageId("l"), lambda ctx: None)


def test_functions_get_only_their_declared_settings_read_only(tmp_path):
    graph = StageGraph(
        [
            Stage(StageId("a"), write_settings, {"n": 1}, outputs={"x": {}}),
            Stage(StageId("b"), read_undeclared, inputs={"in": Ref(StageId("a"), "x")}),
        ]
    )
    with pytest.raises(KeyError, match="not declared; declared: \\['in'\\]"):
        run_local(graph, tmp_path)
    # a finished; b failed and left no folder (written whole or not at all)
    assert json.loads((tmp_path / "stages" / "a" / "settings.json").read_text()) == {"n": 1}
    assert (tmp_path / "stages" / "a" / "x" / "part.txt").read_text() == "x"
    assert not (tmp_path / "stages" / "b").exists()
    report = run_local(StageGraph([Stage(StageId("a"), write_settings, {"n": 1}, outputs={"x": {}})]), tmp_path)
    assert report.skipped == ["a"] and report.computed == []


def _plan(changes=None):
    data = copy.deepcopy(SMALL)
    data["report"] = {"enabled": True}
    _merge(data, changes or {})
    return plan_run(parse_config(data))[0]


def _settings_changed(before: StageGraph, after: StageGraph) -> set[str]:
    return {
        str(s.id)
        for s in after
        if s.id in before.ids() and (s.settings, s.outputs) != (before[s.id].settings, before[s.id].outputs)
    }


def _closure(graph: StageGraph, ids: set[str]) -> set[str]:
    found = set(ids)
    for stage_id in graph.ids():
        if str(stage_id) in ids:
            found |= {str(d) for d in graph.dependents(stage_id)}
    return found


CHANGES = {
    "alphas": {"encoder": {"alphas": [0.5, 5.0]}},
    "bootstraps": {"evaluation": {"n_bootstraps": 7}},
    "noise ceiling": {"evaluation": {"noise_ceiling": "none"}},
    "identification voxels": {"evaluation": {"identification_voxels": 11}},
    "simulated voxels": {"dataset": {"simulation": {"n_voxels": 60}}},
    "seed": {"run": {"seed": 4}},
    "feature store location": {"run": {"cache": "/elsewhere/cache"}},
    "roi column": {"dataset": {"roi_column": "hemisphere"}},
    "report views": {"report": {"enabled": True, "views": ["lateral"]}},
    "batch size (not a setting)": {"features": [{**SMALL["features"][0], "batch_size": 5}, SMALL["features"][1]]},
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_run_keys_change_exactly_for_stages_declaring_the_change_and_their_dependents(name):
    before, after = _plan(), _plan(CHANGES[name])
    assert before.ids() == after.ids()
    declared = _settings_changed(before, after)
    assert _changed(before, after) == _closure(before, declared)


def test_what_each_change_recomputes():
    base = _plan()

    def kinds(changes):
        return sorted({name.split("/")[0] for name in _changed(base, _plan(changes))})

    assert kinds(CHANGES["alphas"]) == ["encode", "identification", "report", "scores", "tables"]
    assert kinds(CHANGES["bootstraps"]) == ["report", "tables"]
    assert kinds(CHANGES["noise ceiling"]) == ["noise_ceiling", "report", "scores", "tables"]
    assert kinds(CHANGES["identification voxels"]) == ["identification", "report", "tables"]
    assert "features" not in kinds(CHANGES["simulated voxels"]) and "stimuli" not in kinds(CHANGES["simulated voxels"])
    assert kinds(CHANGES["batch size (not a setting)"]) == []
    # a new layer adds its own stages; the other layers' encoders keep their keys
    features = copy.deepcopy(SMALL["features"])
    features[1]["layers"] = ["_blocks.2", "_blocks.6", "head"]
    more = _plan({"features": features})
    changed = _changed(base, more) & {str(i) for i in base.ids()}
    assert not any(name.startswith(("encode/", "scores/", "identification/", "experiment/")) for name in changed)
    assert {"features/effnet", "tables", "report"} <= changed


def test_a_features_entry_named_like_a_simulation_driver_does_not_replace_it():
    """An entry called "sim-gabor" (Gabor at 32 px) must not silently drive the simulation's EV voxels (64 px)."""
    from scene2brain.pipeline.config import ConfigError

    data = copy.deepcopy(SMALL)
    data["features"][0]["name"] = "sim-gabor"
    with pytest.raises(ConfigError, match="the name 'sim-gabor' is taken by another feature extraction"):
        plan_run(parse_config(data))


def test_training_folds_keep_stimuli_that_share_content_together():
    from scene2brain.pipeline.plan import training_folds

    groups = np.repeat([f"photo{i}" for i in range(7)], [5, 3, 8, 2, 6, 4, 2])
    folds = training_folds(groups, 3, seed=0)
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(len(groups)))  # a partition
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])  # no photograph on both sides
    unique = training_folds(np.arange(20).astype(str), 4, seed=1)  # no shared content: shuffled K-fold
    assert [len(t) for _, t in unique] == [5, 5, 5, 5] and list(unique[0][1]) != list(range(5))
    with pytest.raises(ValueError, match=r"encoder\.cv: 5 folds need at least 5 stimulus groups; found 3"):
        training_folds(np.array(["a", "b", "c", "a"]), 5, seed=0)
