"""The docs stay true to the code: docs/recipes.md is what
scripts/recipe_reference.py writes, and the Python in docs/plugins.md compiles."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types

import pytest
from tiny_recipes import REPO, bench_module


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_reference_is_up_to_date():
    problem = _script("recipe_reference").check()
    assert problem is None, f"docs/recipes.md: {problem}"


def test_results_page_matches_the_benchmark_records():
    problem = _script("results_page").check()
    assert problem is None, f"docs/results.md: {problem}"


def test_results_page_refuses_a_record_it_cannot_read(tmp_path):
    (tmp_path / "mystery.json").write_text('{"kind": "mystery"}')
    with pytest.raises(ValueError, match="mystery.json: 'kind' is 'mystery'"):
        _script("results_page").render(tmp_path)


def test_a_timed_recipe_record_says_its_minutes_and_how_far_each_run_got():
    _, recipe_section = _script("results_page").SECTIONS["recipe"]
    record = json.loads((REPO / "bench" / "results" / "recipe-quickstart.json").read_text())
    untimed = "\n".join(recipe_section(record))
    assert "- **budget**: 160 kimg, 5,000 generator steps; training took" in untimed
    record["minutes"] = 30
    for run, kimg in zip(record["runs"], (61.5, 58.25, 60), strict=True):
        run["kimg"] = kimg
    timed = "\n".join(recipe_section(record))
    assert "- **budget**: 30 minutes of training a run, which reached 58.25 to 61.5 kimg;" in timed


def test_the_parity_table_gives_each_side_its_score_images_and_speed():
    _, parity_section = _script("results_page").SECTIONS["reference_parity"]
    reference = {"fid": 200.0, "kimg": 112.0, "img_per_s": 62.2, "grid": "docs/results/parity/reference-s0.png"}
    ours = {"fid_raw": 150.0, "fid_ema": 140.0, "kimg": 131.1, "img_per_s": 72.7}
    record = {"reference": "main.py", "gankit_recipe": "recipes/x.toml", "runs": {"0": {"reference": reference, "gankit": ours}}}
    one_seed = "\n".join(parity_section(record))
    assert "| 0 | 200.0 | 150.0 | 140.0 | 112.0 | 131.1 | 62.2 | 72.7 |" in one_seed
    assert "over the reference (means over seeds): **0.750**" in one_seed
    assert "(results/parity/reference-s0.png)" in one_seed and "mean ± sd" not in one_seed
    record["runs"]["1"] = {"reference": {**reference, "fid": 100.0}, "gankit": {**ours, "fid_raw": 150.0}}
    two_seeds = "\n".join(parity_section(record))
    assert "**1.000**" in two_seeds and "| mean ± sd |" in two_seeds
    assert "batch's statistics" not in two_seeds
    record["runs"]["1"]["reference"]["fid_batch_stats"] = 80.0
    record["runs"]["1"]["gankit"]["fid_raw_batch_stats"] = 60.0
    with_batch_stats = "\n".join(parity_section(record))
    assert "| 1 | 80.0 | 60.0 | 0.750 |" in with_batch_stats and "| 0 | 80.0" not in with_batch_stats


def test_results_page_lists_the_recipes_no_record_names():
    page = _script("results_page")
    quickstart = json.loads((REPO / "bench" / "results" / "recipe-quickstart.json").read_text())
    unmeasured = page.recipes_without_record([quickstart])
    assert "quickstart" not in unmeasured
    assert {"msggan_shapes", "toy_ring8_wgangp", "wgangp_cifar10"} <= set(unmeasured)
    assert unmeasured == sorted(unmeasured)


def _python_blocks(path):
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 2, match.group(1)) for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


PLUGINS_MD = REPO / "docs" / "plugins.md"


def test_plugins_md_has_python_blocks():
    assert len(_python_blocks(PLUGINS_MD)) >= 4


@pytest.mark.parametrize("line, code", _python_blocks(PLUGINS_MD), ids=[f"line{line}" for line, _ in _python_blocks(PLUGINS_MD)])
def test_plugins_md_python_blocks_compile(line, code):
    compile(code, f"docs/plugins.md, the block at line {line}", "exec")


def test_the_throughput_table_shows_a_recipe_whose_flops_went_uncounted():
    _, throughput_section = _script("results_page").SECTIONS["throughput"]
    counted = {"img_per_s": 600.0, "img_per_s_trials": [600.0], "gflop_per_iteration": 1.5, "achieved_tflop_per_s": 0.02,
               "peak_memory_mb": 780.0}  # fmt: skip
    record = {"recipe": "progan_cifar10", "environment": {}, "date": "2026-12-07", "command": "python bench/throughput.py",
              "variants": {"fp32": counted, "gp": {**counted, "gflop_per_iteration": None, "achieved_tflop_per_s": None}}}  # fmt: skip
    table = "\n".join(throughput_section(record))
    assert "| fp32 | 600.0 | 600 | 1.50 | 0.0200 | 780 |" in table
    assert "| gp | 600.0 | 600 | not counted (gradient penalty) | — | 780 |" in table


def _milestone(minutes, kimg, fid=None, tick_kimg=5.0):
    entry = {"minutes": minutes, "kimg": kimg, "img_per_s": 100.0, "peak_memory_mb": 900.0, "tick_kimg": tick_kimg}
    return entry | ({"fid_ema": fid} if fid is not None else {})


def test_the_cifar10_table_counts_a_seed_once_scored_at_the_last_milestone_and_names_the_others():
    _, cifar10_section = _script("results_page").COMBINED_SECTIONS["cifar10"]
    scored = {"milestones": [_milestone(10.0, 100, 150.0), _milestone(30.0, 300, 80.0, tick_kimg=20.0)]}
    unscored = {"milestones": [_milestone(10.0, 110)]}
    record = {"recipe": "dcgan_cifar10", "variant": "", "published": "StudioGAN DCGAN 49.03", "runs": {"0": scored, "1": unscored}}
    started = {"recipe": "sgan_cifar10", "variant": "", "runs": {"0": {"milestones": []}}}  # its first piece still training
    table = "\n".join(cifar10_section([record, started]))
    # the tick says how far past each budget a piece ran; a resumed run that changed it shows both
    assert "| `dcgan_cifar10` | 0 | 150.0 | 80.0 | 300 | 5, 20 | 100 | 900 MB | StudioGAN DCGAN 49.03 |" in table
    assert "`dcgan_cifar10` seed 1: trained 10 minutes (110 kimg), not yet scored" in table
    assert "| `sgan_cifar10` | — | — | — | — | — | — | — |" in table


def test_a_cpu_variant_shows_its_paper_recipes_published_figure_named_as_such():
    cifar10 = bench_module("cifar10")
    assert cifar10.published(REPO / "recipes" / "dcgan_cifar10.toml", "dcgan_cifar10") == "StudioGAN DCGAN 49.03"
    figure = cifar10.published(REPO / "recipes" / "wgangp_cifar10_cpu.toml", "wgangp_cifar10_cpu")
    assert figure.startswith("StudioGAN WGAN-GP 25.85") and figure.endswith("(with wgangp_cifar10's widths)")
    assert cifar10.published(REPO / "recipes" / "cgan_cifar10.toml", "cgan_cifar10") == ""


def test_cifar10_runs_tick_short_enough_for_their_milestones_unless_told_otherwise():
    from gankit import default_registry, load_recipe

    cifar10 = bench_module("cifar10")
    recipe = REPO / "recipes" / "progan_cifar10_cpu.toml"
    assert load_recipe(recipe, default_registry()).train.tick_kimg == 40  # minutes at a CPU's speed
    chosen = load_recipe(recipe, default_registry(), cifar10.run_overrides("data", 5.0, [], 0))
    assert chosen.train.tick_kimg == 5 and chosen.train.seed == 0
    given = load_recipe(recipe, default_registry(), cifar10.run_overrides("data", 5.0, ["train.tick_kimg=2"], 1))
    assert given.train.tick_kimg == 2 and given.train.seed == 1


def test_the_cifar10_section_sets_msggans_connection_arms_side_by_side():
    _, cifar10_section = _script("results_page").COMBINED_SECTIONS["cifar10"]

    def arm(variant, fids):
        runs = {str(seed): {"milestones": [_milestone(10.0, 60, fid)]} for seed, fid in enumerate(fids)}
        return {"recipe": "msggan_cifar10_cpu", "variant": variant, "runs": runs}

    alone = "\n".join(cifar10_section([arm("", [200.0])]))
    assert "multi-scale connections" not in alone
    page = "\n".join(cifar10_section([arm("", [200.0, 220.0]), arm("connections-none", [250.0, None])]))
    assert "| all scales (MSG-GAN) (`msggan_cifar10_cpu`) | 0, 1 | 210.0 ± 14.1 | 0: 200.0 at 10 min, 1: 220.0 at 10 min |" in page
    assert "| none (the 32x32 image alone) (`msggan_cifar10_cpu+connections-none`) | 0 | 250.0 | 0: 250.0 at 10 min |" in page


def test_the_cifar10_msggan_ablation_trains_every_arm_before_scoring_in_the_folders_given(monkeypatch, tmp_path):
    ablation = bench_module("msggan_ablation")
    calls = []
    monkeypatch.setitem(sys.modules, "cifar10", types.SimpleNamespace(main=calls.append))
    ablation.cifar10_arms("msggan_cifar10_cpu", ["all", "none"], 2, [30.0], tmp_path / "work")
    phases = [call[-1] for call in calls]
    assert phases == ["--train-only"] * 4 + ["--score-only"] * 4
    assert [call[call.index("--seed") + 1] for call in calls[:4]] == ["0", "0", "1", "1"]  # arms interleaved seed by seed
    assert all(call[call.index("--work") + 1] == str(tmp_path / "work") for call in calls)
    none_arm = calls[1]
    assert none_arm[none_arm.index("--set") + 1] == 'discriminator.connections="none"' and "--set" not in calls[0]
    calls.clear()
    ablation.cifar10_arms("msggan_cifar10_cpu", ["all"], 1, [30.0])
    assert "--work" not in calls[0]  # bench/cifar10.py's own default
