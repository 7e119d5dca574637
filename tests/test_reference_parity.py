"""bench/reference_parity.py's reading of the references' logs, and
bench/mimicry_train.py's way into torch-mimicry without its package
``__init__``: the parts of the comparison that need no reference checkout."""

from __future__ import annotations

import sys
import tomllib

import pytest
from tiny_recipes import REPO, bench_module


def test_steps_come_from_each_references_last_progress_line():
    parity = bench_module("reference_parity")
    main_py = "Random Seed:  0\n[0/1000][781/782] Loss_D: 0.5\n[1/1000][36/782] Loss_D: 0.4 Loss_G: 3.1\nsaving\n"
    assert parity.steps_done(parity.REFERENCES["dcgan"], main_py) == 782 + 37
    mimicry = "INFO: Starting training from global step 0...\nINFO: [Epoch 1/320][Global Step: 56/100000]\n| errD: 1.0\n"
    mimicry += "INFO: [Epoch 1/320][Global Step: 57/100000]\n| errD: 0.9\n| (0.9 sec/idx)\n"
    assert parity.steps_done(parity.REFERENCES["wgangp"], mimicry) == 57
    assert parity.REFERENCES["wgangp"].images_per_step == 320
    with pytest.raises(SystemExit, match="no progress line"):
        parity.steps_done(parity.REFERENCES["wgangp"], main_py)


def test_every_reference_has_its_gankit_recipe():
    parity = bench_module("reference_parity")
    for reference in parity.REFERENCES.values():
        assert (REPO / reference.recipe).is_file(), reference.recipe


def test_mimicry_modules_load_without_the_package_init(tmp_path):
    package = tmp_path / "torch_mimicry"
    (package / "nets").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('No module named tensorflow')\n")
    (package / "nets" / "__init__.py").write_text("from . import wgan\n")
    (package / "nets" / "wgan.py").write_text("GENERATOR = 'netG'\n")
    mimicry = bench_module("mimicry_train")
    names = ("torch_mimicry", "torch_mimicry.nets", "torch_mimicry.nets.wgan")
    assert not any(name in sys.modules for name in names)
    try:
        assert mimicry.mimicry_module(tmp_path, "nets.wgan").GENERATOR == "netG"
    finally:
        for name in names:
            sys.modules.pop(name, None)
    with pytest.raises(SystemExit, match="torch_mimicry/ package"):
        mimicry.mimicry_module(tmp_path / "elsewhere", "nets")


def test_the_cpu_wgangp_reference_trains_at_its_gankit_recipes_widths(tmp_path):
    parity = bench_module("reference_parity")
    reference = parity.REFERENCES["wgangp_cpu"]
    recipe = tomllib.loads((REPO / reference.recipe).read_text())
    command = reference.script(tmp_path / "mimicry", 0, tmp_path / "data", tmp_path / "out")
    assert command[command.index("--ngf") + 1] == str(recipe["generator"]["channels"])
    assert command[command.index("--ndf") + 1] == str(recipe["discriminator"]["channels"])
    assert "--ngf" not in parity.REFERENCES["wgangp"].script(tmp_path, 0, tmp_path, tmp_path)


def test_mimicry_networks_keep_their_own_widths_unless_given():
    mimicry_train = bench_module("mimicry_train")
    assert mimicry_train.widths(ngf=None) == {}
    assert mimicry_train.widths(ngf=64, ndf=None) == {"ngf": 64}
