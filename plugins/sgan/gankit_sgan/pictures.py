"""What each stack draws, for the same noise (Huang et al. 2017, Fig. 4):
one row per class, each with its own z1; the first column is G1's features
drawn by G0 at z0's mean (0), what stack 1 decided; the next ones are G0 at
other z0, what stack 0 varies."""

from __future__ import annotations

import torch

import gankit
from gankit_sgan.networks import SGANGenerator


@torch.no_grad()
def stack_images(generator: SGANGenerator, variations: int = 7, seed: int = 0) -> torch.Tensor:
    """[classes * (1 + variations), C, H, W] in [-1, 1], row by row."""
    was_training = generator.training
    generator.eval()
    try:
        device = next(generator.parameters()).device
        rng = torch.Generator().manual_seed(seed)
        classes = generator.num_classes
        z = generator.sample_latents(classes * (1 + variations), "cpu", rng).to(device)
        z1, z0 = generator.split(z)
        z1 = z1[:classes].repeat_interleave(1 + variations, dim=0)  # one z1 per row
        z0 = z0.view(classes, 1 + variations, -1)
        z0[:, 0] = 0  # the first column: z0's mean
        labels = torch.arange(classes, device=device).repeat_interleave(1 + variations)
        return generator.stack0(generator.stack1(z1, labels), z0.reshape(-1, z0.shape[-1])).float().cpu()
    finally:
        generator.train(was_training)


def stack_picture(generator: gankit.Generator, variations: int = 7, seed: int = 0) -> torch.Tensor:
    """The grid of :func:`stack_images`, a float RGB image in [0, 1], [3, H, W]."""
    if not isinstance(generator, SGANGenerator):
        raise gankit.UserError(f"a stack picture needs the sgan generator, got {type(generator).__name__}")
    import torchvision.utils  # here: listing components must not import torchvision

    images = stack_images(generator, variations, seed)
    return torchvision.utils.make_grid(images, nrow=1 + variations, normalize=True, value_range=(-1, 1)).expand(3, -1, -1)


def main(argv: list[str] | None = None) -> int:
    """python -m gankit_sgan.pictures RUN_OR_CHECKPOINT --out stacks.png"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gankit_sgan.pictures", description=main.__doc__)
    parser.add_argument("source", help="a run folder or a checkpoint of an sgan recipe")
    parser.add_argument("--out", default="stacks.png", help="PNG to write (default stacks.png)")
    parser.add_argument("--variations", type=int, default=7, help="z0 draws per row besides its mean (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torchvision.utils

    run = gankit.Run.from_checkpoint(args.source)
    torchvision.utils.save_image(stack_picture(run.generator, args.variations, args.seed), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
