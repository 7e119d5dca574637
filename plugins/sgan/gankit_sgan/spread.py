"""How much of the data's variety each stack keeps. The entropy loss
(Huang et al. 2017, Sec. 3.3) is there so that a stack does not ignore its
noise; this measures whether it did: the spread of G1's features across z1
for one label, beside the spread of the encoder's features of the real
images of one class, and the spread of G0's images across z0 for fixed
features, beside their spread across features.

    python -m gankit_sgan.spread RUN_OR_CHECKPOINT [--images 2000]
"""

from __future__ import annotations

import argparse

import torch

import gankit
from gankit_sgan.encoder import Encoder
from gankit_sgan.networks import SGANGenerator


def _spread(features: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[float, float]:
    """(the mean per-dimension std within a class, averaged over classes;
    the same std of the class means)."""
    within = torch.stack([features[labels == c].std(0).mean() for c in range(classes)]).mean()
    between = torch.stack([features[labels == c].mean(0) for c in range(classes)]).std(0).mean()
    return float(within), float(between)


@torch.no_grad()
def stack_spread(
    generator: SGANGenerator, encoder: Encoder, real_images: torch.Tensor, real_labels: torch.Tensor, per_class: int = 200, seed: int = 0
) -> dict[str, float]:
    """The spreads, with the generator in eval mode (as it samples) and real
    images in [-1, 1]. Every class must have at least two real images."""
    was_training = generator.training
    generator.eval()
    try:
        classes = generator.num_classes
        z = generator.sample_latents(classes * per_class, generator=torch.Generator().manual_seed(seed))
        z1, z0 = generator.split(z)
        labels = torch.arange(classes).repeat(per_class)
        h1 = generator.stack1(z1, labels)
        g1_within, g1_between = _spread(h1, labels, classes)
        real_within, real_between = _spread(encoder.features(real_images), real_labels, classes)
        # G0 for the first features of each class across all z0, and for all features at the first z0
        fixed_h1 = generator.stack0(h1[:classes].repeat_interleave(per_class, 0), z0)
        fixed_z0 = generator.stack0(h1, z0[:1].expand_as(z0))
        return {
            "g1_within_class": g1_within,
            "g1_between_classes": g1_between,
            "real_within_class": real_within,
            "real_between_classes": real_between,
            "g0_across_z0": float(fixed_h1.view(classes, per_class, -1).std(1).mean()),
            "g0_across_features": float(fixed_z0.std(0).mean()),
        }
    finally:
        generator.train(was_training)


def checkpoint_encoder(state: dict, resolution: int) -> Encoder:
    """The frozen encoder a checkpoint's discriminator holds."""
    weights = {name.removeprefix("encoder."): value for name, value in state["discriminator"].items() if name.startswith("encoder.")}
    conv1, conv2, fc3, fc4 = (weights[f"{layer}.weight"] for layer in ("conv1", "conv2", "fc3", "fc4"))
    encoder = Encoder(resolution, conv1.shape[1], fc4.shape[0], (conv1.shape[0], conv2.shape[0]), fc3.shape[0])
    encoder.load_state_dict(weights)
    return encoder.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gankit_sgan.spread", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a run folder or a checkpoint of an sgan recipe")
    parser.add_argument("--images", type=int, default=2000, help="real images, spread evenly through the run's data (default 2000)")
    parser.add_argument("--raw", action="store_true", help="the trained generator, not its moving average")
    args = parser.parse_args(argv)
    try:
        run = gankit.Run.from_checkpoint(args.source, raw=args.raw)
        if not isinstance(run.generator, SGANGenerator):
            raise gankit.UserError(f"{args.source}: the spread needs the sgan generator, got {type(run.generator).__name__}")
        encoder = checkpoint_encoder(gankit.load_checkpoint(run.checkpoint), run.context.resolution)
        data = run.dataset()
        data.prepare()
        step = max(1, len(data) // args.images)
        images, labels = data.__getitems__(list(range(0, len(data), step))[: args.images])
    except gankit.UserError as error:
        parser.exit(2, f"python -m gankit_sgan.spread: {error}\n")
    spread = stack_spread(run.generator, encoder, gankit.to_float_images(images), labels)
    print(f"{run.checkpoint} ({'trained generator' if args.raw else 'moving average'}; {len(labels)} real images)")
    print("| per-dimension std | within a class | of the class means |")
    print("|---|---:|---:|")
    print(f"| G1's features (across z1) | {spread['g1_within_class']:.4f} | {spread['g1_between_classes']:.4f} |")
    print(f"| the encoder's features of real images | {spread['real_within_class']:.4f} | {spread['real_between_classes']:.4f} |")
    print(f"G0's pixels: std {spread['g0_across_z0']:.4f} across z0 at fixed features, {spread['g0_across_features']:.4f} across features")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
