"""SGAN on data a conditional DCGAN learns within seconds: which of SGAN's
losses keeps its samples from looking like the data?

The data are write_hue_classes' six hue classes at 16x16
(plugins/dcgan's fast class_accuracy test reaches 0.8 on them after 12
kimg). SGAN trains the recipe of plugins/sgan's hue-class test
(``outcomes.sgan_hues.hue_recipe``: its small networks, 4 kimg independent then the rest
joint), once per set of weights given (λ_cond,
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the outcomes package beside recipes/
from outcomes import write_hue_classes  # noqa: E402
from outcomes.sgan_hues import hue_recipe  # noqa: E402


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
            text = hue_recipe(0, data, args.kimg, conditional, entropy, scale)
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
