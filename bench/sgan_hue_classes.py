"""SGAN on data a conditional DCGAN learns within seconds: which of SGAN's
losses keeps its samples from looking like the data?

The data are gankit.testing.write_hue_classes' six hue classes at 16x16
(plugins/dcgan's fast class_accuracy test reaches 0.8 on them after 12
kimg). SGAN trains with plugins/sgan's fast-test networks, 4 kimg
independent then the rest joint, once per set of weights given (λ_cond,
λ_ent and optionally stack0_conditional_scale, which multiplies stack 0's
L_cond on top of λ_cond); each row reports recognizability's relative
score and class_accuracy and the last step's unweighted L_cond of stack 0.

    python bench/sgan_hue_classes.py [--kimg 16] [--weights 1,10 0.1,1 0,0 1,1,0.01]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from gankit import Run, default_registry, recipe_from_text
from gankit.testing import write_hue_classes

RECIPE = """
name = "sgan_hues"
[data]
type = "images"
path = "{path}"
resolution = 16
labels = true
in_memory = "yes"
workers = 0
[generator]
type = "sgan"
g1_width = 128
z0_width = 64
g0_channels = 64
features = 64
[discriminator]
type = "sgan"
channels = 16
d1_width = 64
encoder_widths = [16, 32]
encoder_features = 64
encoder_epochs = 4
encoder_batch_size = 50
encoder_lr = 2e-3
[loss]
type = "nonsaturating"
[regularizers.sgan_d]
type = "sgan_losses"
phase = "D"
entropy_weight = {entropy}
[regularizers.sgan_g]
type = "sgan_losses"
phase = "G"
conditional_weight = {conditional}
entropy_weight = {entropy}
stack0_conditional_scale = {scale}
[scheduler]
type = "sgan_stacked"
independent_kimg = 4
[optimizers.generator]
type = "adam"
lr = 2e-4
betas = [0.5, 0.999]
[optimizers.discriminator]
type = "adam"
lr = 2e-4
betas = [0.5, 0.999]
[metrics.recognizability]
images = 1024
[train]
kimg = {kimg}
batch_size = 32
device = "cpu"
tick_kimg = {kimg}
ema_halflife_kimg = 1.0
seed = 0
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kimg", type=float, default=16.0)
    parser.add_argument(
        "--weights",
        nargs="+",
        default=["1,10", "0.1,1", "0,0", "1,1,0", "1,10,0.01", "1,1,0.01"],
        help="λ_cond,λ_ent[,stack0_conditional_scale] per training",
    )
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = write_hue_classes(Path(folder) / "hues")
        for pair in args.weights:
            conditional, entropy, scale = ([float(value) for value in pair.split(",")] + [1.0])[:3]
            text = RECIPE.format(path=data.as_posix(), kimg=args.kimg, conditional=conditional, entropy=entropy, scale=scale)
            torch.manual_seed(0)
            run = Run.in_memory(recipe_from_text(text, "sgan_hues", default_registry()), progress="none")
            scores = run.train()["metrics"]["recognizability"]
            cond0 = float(run.trainer.regularizers["sgan_g"].terms["cond0"])  # type: ignore[attr-defined]
            rows.append((conditional, entropy, scale, scores["relative"], scores["class_accuracy"], cond0))
    print("| λ_cond | λ_ent | stack0_conditional_scale | relative recognizability | class_accuracy | L_cond of stack 0 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for conditional, entropy, scale, relative, accuracy, cond0 in rows:
        print(f"| {conditional:g} | {entropy:g} | {scale:g} | {relative:.3f} | {accuracy:.3f} | {cond0:.2f} |")
    print("\ncommand: python bench/sgan_hue_classes.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
