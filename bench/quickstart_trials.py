"""Changes to recipes/quickstart.toml that no recipe option expresses, each
applied to a started run before it trains and scored by recognizability,
so that the rows of plugins/dcgan/README.md's table that name one can be
measured again.

Each trial patches the run's networks, loss or loop in place; none is a
gankit component, because none raised the quickstart's recognizability.
Changes that are options of a recipe are tried with `gankit run
recipes/quickstart.toml --set ...` instead.

    python bench/quickstart_trials.py --trials top_k lookahead [--seeds 0 1]
    python bench/quickstart_trials.py --trials all --smoke    # every patch, a few steps, no metric
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import Run, to_float_images
from gankit.layers import VirtualBatchNorm, WithReferenceBatch
from gankit_dcgan.losses import NonSaturatingLoss
from gankit_dcgan.networks import LEAK, init_weights

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "quickstart.toml"


@attrs.define(frozen=True)
class Trial:
    description: str
    apply: Callable[[Run], None]
    overrides: tuple[str, ...] = ()


def _nothing(run: Run) -> None:
    pass


def _top_k(run: Run) -> None:
    """Sinha et al. 2020: G's loss over the half of its fakes that D scores highest."""
    loss = run.trainer.loss
    if not isinstance(loss, NonSaturatingLoss):
        raise SystemExit(f"top_k patches the non-saturating loss; the recipe's is {type(loss).__name__}")

    def generator_loss(fake, real):  # noqa: ANN001, ANN202 - the Loss contract's signature
        scores = fake.scores.flatten()
        return F.softplus(-scores.topk(max(1, round(0.5 * scores.numel()))).values).mean()

    loss.generator_loss = generator_loss


def _d_dropout(run: Run) -> None:
    """Dropout 0.3 after each of D's LeakyReLUs."""
    for module in run.trainer.D.modules():
        if isinstance(module, nn.LeakyReLU):
            module.register_forward_hook(lambda layer, inputs, output: F.dropout(output, 0.3, training=layer.training))


def _lookahead(run: Run) -> None:
    """Chavdarova et al. 2021, Lookahead-minmax: every 5 steps each network's
    slow weights move halfway to its fast ones, and the fast weights restart
    from there."""
    trainer = run.trainer
    networks = [trainer.G, trainer.D]
    slow = [[p.detach().clone() for p in network.parameters()] for network in networks]
    steps = [0]

    def pull_back(_trainer: object) -> None:
        steps[0] += 1
        if steps[0] % 5:
            return
        with torch.no_grad():
            for network, slow_weights in zip(networks, slow, strict=True):
                for fast, weight in zip(network.parameters(), slow_weights, strict=True):
                    weight.lerp_(fast, 0.5)
                    fast.copy_(weight)

    trainer.step_callbacks.append(pull_back)


def _virtual(norm: nn.BatchNorm2d) -> VirtualBatchNorm:
    layer = VirtualBatchNorm(norm.num_features)
    layer.weight, layer.bias = norm.weight, norm.bias  # the optimizer holds these
    return layer


def _virtual_bn_d(run: Run) -> None:
    """Virtual batch normalization in D instead of batch norm, with a fixed
    reference batch of 32 real images."""
    trainer = run.trainer
    for block in trainer.D.blocks:
        for index, module in enumerate(block):
            if isinstance(module, nn.BatchNorm2d):
                block[index] = _virtual(module)
                block[index].reference_size = 32
    trainer.dataset.prepare()
    order = torch.randperm(len(trainer.dataset), generator=torch.Generator().manual_seed(run.recipe.train.seed))
    reference = to_float_images(trainer.dataset.__getitems__(order[:32].tolist())[0]).to(trainer.device)

    # WithReferenceBatch wraps a module of one tensor; D takes a list of
    # images and returns its features too, so hooks put the reference in
    # front of the images and take its rows off every output
    def prepend(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
        images = list(args[0])
        images[-1] = torch.cat([reference.to(images[-1].dtype), images[-1]])
        return (images, *args[1:]), kwargs

    def drop(module: nn.Module, args: tuple, kwargs: dict, output: object) -> object:
        if isinstance(output, tuple):  # (scores, features)
            return output[0][32:], [features[32:] for features in output[1]]
        return output[32:]

    trainer.D.register_forward_pre_hook(prepend, with_kwargs=True)
    trainer.D.register_forward_hook(drop, with_kwargs=True)


def _virtual_bn_g(run: Run) -> None:
    """Virtual batch normalization in G, as Salimans et al. use it, with a
    fixed reference batch of 32 latents; the EMA generator the same."""
    trainer = run.trainer
    generator = torch.Generator().manual_seed(run.recipe.train.seed + 7)
    reference = torch.randn(32, trainer.G.latent_size, generator=generator).to(trainer.device)
    for network in (trainer.G, trainer.G_ema):
        layers = [_virtual(module) if isinstance(module, nn.BatchNorm2d) else module for module in network.net]
        # G's forward runs its layers in turn on z as a 1x1 map: one layer that holds them all
        network.net = nn.Sequential(WithReferenceBatch(nn.Sequential(*layers), reference[:, :, None, None]))


def _reset_optimizer(run: Run, role: str, network: nn.Module) -> None:
    optimizer = run.trainer.optimizers[role]
    optimizer.param_groups[0]["params"] = list(network.parameters())
    optimizer.state.clear()


def _spectral_norm_g(run: Run) -> None:
    """Spectral norm on every convolution of G (Zhang et al. 2019 §4.1), D unchanged."""
    for network in (run.trainer.G, run.trainer.G_ema):
        for module in list(network.modules()):
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                # a transposed convolution's weight is [in, out, k, k]: its output dimension is 1
                nn.utils.parametrizations.spectral_norm(module, dim=1 if isinstance(module, nn.ConvTranspose2d) else 0)
    _reset_optimizer(run, "generator", run.trainer.G)


def _rebuild_ema(run: Run) -> None:
    """The EMA generator starts as a copy of G, as the trainer made it: after a change to G's layers, again."""
    trainer = run.trainer
    trainer.G_ema = copy.deepcopy(trainer.G).eval()
    trainer.G_ema.requires_grad_(False)


def _new_layers(run: Run, role: str, network: nn.Module, layers: list[nn.Module]) -> None:
    """``layers`` were added to ``network``: DCGAN's initialization (§4) for them, and the optimizer for all."""
    for layer in layers:
        layer.apply(init_weights)
    _reset_optimizer(run, role, network)
    if role == "generator":
        _rebuild_ema(run)


def _deeper(run: Run, discriminator_too: bool) -> None:
    G = run.trainer.G
    added: list[nn.Module] = []
    layers: list[nn.Module] = []
    channels = 0
    for layer in G.net:
        layers.append(layer)
        if isinstance(layer, nn.ConvTranspose2d):
            channels = layer.out_channels
        if isinstance(layer, nn.ReLU):
            extra = [nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            layers += extra
            added += extra
    G.net = nn.Sequential(*layers)
    _new_layers(run, "generator", G, added)
    if discriminator_too:
        D = run.trainer.D
        added = []
        for block in D.blocks[1:]:
            channels = block[0].out_channels
            extra = [nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.LeakyReLU(LEAK)]
            for layer in extra:
                block.append(layer)
            added += extra
        _new_layers(run, "discriminator", D, added)


def _deeper_g(run: Run) -> None:
    """A second convolution (3x3, batch norm, ReLU) after each of G's upsampling layers."""
    _deeper(run, discriminator_too=False)


def _deeper_gd(run: Run) -> None:
    """deeper_g, and a 3x3 convolution with batch norm and LeakyReLU after each of D's strided convolutions but the first."""
    _deeper(run, discriminator_too=True)


class _WithCoordinates(nn.Module):
    """Liu et al. 2018, CoordConv: x and y in [-1, 1] join the input as two channels."""

    def __init__(self, convolution: nn.Conv2d | nn.ConvTranspose2d) -> None:
        super().__init__()
        kind = type(convolution)
        self.convolution = kind(
            convolution.in_channels + 2,
            convolution.out_channels,
            convolution.kernel_size,
            convolution.stride,
            convolution.padding,
            bias=convolution.bias is not None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        return self.convolution(torch.cat([x, ys, xs], dim=1))


def _coordinates(run: Run, discriminator_too: bool) -> None:
    G = run.trainer.G
    added: list[nn.Module] = []
    for index, layer in enumerate(G.net):
        if isinstance(layer, nn.ConvTranspose2d) and layer.stride[0] == 2:
            G.net[index] = _WithCoordinates(layer)
            added.append(G.net[index])
    _new_layers(run, "generator", G, added)
    if discriminator_too:
        D = run.trainer.D
        added = []
        for block in D.blocks:
            block[0] = _WithCoordinates(block[0])
            added.append(block[0])
        _new_layers(run, "discriminator", D, added)


def _coordconv_g(run: Run) -> None:
    """CoordConv (Liu et al. 2018): x and y coordinate channels joined to the input of each of G's upsampling layers."""
    _coordinates(run, discriminator_too=False)


def _coordconv_gd(run: Run) -> None:
    """coordconv_g, and the coordinate channels joined to the input of each of D's strided convolutions too."""
    _coordinates(run, discriminator_too=True)


def _diff_augment(x: torch.Tensor) -> torch.Tensor:
    """Zhao et al. 2020's colour, translation (1/8 of the size) and cutout (1/2) on a batch in [-1, 1]."""
    n, size = x.shape[0], x.shape[2]

    def uniform() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)

    x = x + (uniform() - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (uniform() * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (uniform() + 0.5) + mean  # contrast
    shift = int(size * 0.125 + 0.5)
    tx, ty = (torch.randint(-shift, shift + 1, (n, 1, 1), device=x.device) for _ in range(2))
    batch, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(size, device=x.device), torch.arange(size, device=x.device), indexing="ij"
    )
    gx, gy = (gx + tx + 1).clamp(0, size + 1), (gy + ty + 1).clamp(0, size + 1)
    x = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1).contiguous()[batch, gx, gy].permute(0, 3, 1, 2)
    cut = int(size * 0.5 + 0.5)
    ox, oy = (torch.randint(0, size + (1 - cut % 2), (n, 1, 1), device=x.device) for _ in range(2))
    batch, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(cut, device=x.device), torch.arange(cut, device=x.device), indexing="ij"
    )
    mask = torch.ones(n, size, size, device=x.device, dtype=x.dtype)
    mask[batch, (gx + ox - cut // 2).clamp(0, size - 1), (gy + oy - cut // 2).clamp(0, size - 1)] = 0
    return x * mask.unsqueeze(1)


def _diffaugment(run: Run) -> None:
    """DiffAugment (Zhao et al. 2020: colour, translation by 1/8, cutout of 1/2) on every image D sees, in both phases."""

    def augment(module: nn.Module, args: tuple, kwargs: dict) -> tuple | None:
        if not module.training:
            return None
        return ([_diff_augment(images) for images in args[0]], *args[1:]), kwargs

    run.trainer.D.register_forward_pre_hook(augment, with_kwargs=True)


def _linear_output(run: Run) -> None:
    """A linear output layer in G instead of tanh; the EMA generator clamps to [-1, 1]."""
    run.trainer.G.net[-1] = nn.Identity()
    run.trainer.G_ema.net[-1] = nn.Hardtanh()


class _TanhWithGradientFloor(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - autograd's signature
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y).clamp_min(0.25)


class _FlooredTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _TanhWithGradientFloor.apply(x)


def _tanh_gradient_floor(run: Run) -> None:
    """tanh's gradient kept at 0.25 or more where G's output saturates; the forward pass unchanged."""
    for network in (run.trainer.G, run.trainer.G_ema):
        network.net[-1] = _FlooredTanh()


class _SummedHead(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, 1)
        nn.init.normal_(self.linear.weight, 0.0, 0.02)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.sum(dim=(2, 3)))


def _pooled_d_head(run: Run) -> None:
    """D's score from its last features summed over positions, as the
    projection head's ψ reads them, instead of a 4x4 convolution."""
    D = run.trainer.D
    D.head = _SummedHead(D.head.in_channels)
    _reset_optimizer(run, "discriminator", D)


def _joint_g_phase_only(run: Run) -> None:
    """Reals and fakes as one D batch in the G phase only (with
    train.joint_d_batch = true); separate batches in the D phase."""
    trainer = run.trainer
    d_step = trainer.d_step

    def separate_d_step(*args: object) -> None:
        trainer.options.joint_d_batch = False
        try:
            d_step(*args)
        finally:
            trainer.options.joint_d_batch = True

    trainer.d_step = separate_d_step


class _SelfModulatedNorm(nn.Module):
    """Batch norm whose scale and shift also follow z: γ(z) and β(z) from an
    MLP with one hidden layer of 32 units (Chen et al. 2019, eq. 1)."""

    def __init__(self, norm: nn.BatchNorm2d, latent_size: int) -> None:
        super().__init__()
        self.norm = norm
        self.mlp = nn.Sequential(nn.Linear(latent_size, 32), nn.ReLU(), nn.Linear(32, 2 * norm.num_features))
        nn.init.normal_(self.mlp[2].weight, 0.0, 0.02)  # starts as the plain batch norm
        nn.init.zeros_(self.mlp[2].bias)
        self.latents: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mlp(self.latents).chunk(2, dim=1)
        return self.norm(x) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]


def _hand_latents_to_norms(network: nn.Module, args: tuple) -> None:
    for module in network.net:
        if isinstance(module, _SelfModulatedNorm):
            module.latents = args[0]


def _self_modulation(run: Run) -> None:
    """Self-modulation (Chen et al. 2019): every batch norm of G also scales
    and shifts by an MLP of z (one hidden layer of 32 units)."""
    G = run.trainer.G
    added: list[nn.Module] = []
    for index, module in enumerate(G.net):
        if isinstance(module, nn.BatchNorm2d):
            G.net[index] = _SelfModulatedNorm(module, G.latent_size)
            added.append(G.net[index].mlp)
    G.register_forward_pre_hook(_hand_latents_to_norms)
    _new_layers(run, "generator", G, added)


TRIALS: dict[str, Trial] = {
    "recipe": Trial("the recipe unchanged", _nothing),
    "top_k": Trial(_top_k.__doc__, _top_k),
    "d_dropout": Trial(_d_dropout.__doc__, _d_dropout),
    "lookahead": Trial(_lookahead.__doc__, _lookahead),
    "virtual_bn_d": Trial(_virtual_bn_d.__doc__, _virtual_bn_d),
    "virtual_bn_g": Trial(_virtual_bn_g.__doc__, _virtual_bn_g),
    "spectral_norm_g": Trial(_spectral_norm_g.__doc__, _spectral_norm_g),
    "pooled_d_head": Trial(_pooled_d_head.__doc__, _pooled_d_head),
    "joint_g_phase_only": Trial(_joint_g_phase_only.__doc__, _joint_g_phase_only, ("train.joint_d_batch=true",)),
    "deeper_g": Trial(_deeper_g.__doc__, _deeper_g),
    "deeper_gd": Trial(_deeper_gd.__doc__, _deeper_gd),
    "coordconv_g": Trial(_coordconv_g.__doc__, _coordconv_g),
    "coordconv_gd": Trial(_coordconv_gd.__doc__, _coordconv_gd),
    "diffaugment": Trial(_diffaugment.__doc__, _diffaugment),
    "linear_output": Trial(_linear_output.__doc__, _linear_output),
    "tanh_gradient_floor": Trial(_tanh_gradient_floor.__doc__, _tanh_gradient_floor),
    "self_modulation": Trial(_self_modulation.__doc__, _self_modulation),
}


def run_trial(name: str, seed: int, smoke: bool) -> dict[str, object]:
    trial = TRIALS[name]
    overrides = [f"train.seed={seed}", "train.sample_ticks=0", "train.checkpoint_ticks=0", *trial.overrides]
    if smoke:
        overrides += ["data.size=256", "train.kimg=0.256", "train.tick_kimg=0.128", "train.device=cpu"]
    else:
        overrides += ["metrics.recognizability.type=recognizability", "train.metric_ticks=0"]
    with tempfile.TemporaryDirectory() as folder:
        run = Run.start(RECIPE, overrides, run_dir=Path(folder) / "run", progress="none")
        trial.apply(run)
        started = time.perf_counter()
        record = run.train()
        seconds = time.perf_counter() - started
        # the same latents for every trial: a patch that changes nothing leaves these images as the recipe's
        samples = run.sample(8, seed=0)[-1]
    losses = [record[key] for key in ("loss/D", "loss/G")]
    if not all(math.isfinite(value) for value in losses) or record["kimg"] < run.recipe.train.kimg:
        raise SystemExit(f"trial {name}, seed {seed}: the run did not finish with finite losses ({record})")
    row: dict[str, object] = {"trial": name, "seed": seed, "seconds": seconds, "samples": samples}
    if not smoke:
        scores = record["metrics"]["recognizability"]
        row |= {"relative": scores["relative"], "classes_drawn": scores["classes_drawn"]}
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", nargs="+", required=True, choices=[*TRIALS, "all"], metavar="TRIAL", help=", ".join(TRIALS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few steps of each trial on 256 images, no metric: does each patch still apply and change the training?",
    )
    args = parser.parse_args(argv)
    names = list(TRIALS) if "all" in args.trials else args.trials
    if args.smoke and "recipe" not in names:
        names = ["recipe", *names]  # what each patched run is compared with
    rows = [run_trial(name, seed, args.smoke) for seed in args.seeds for name in names]
    if args.smoke:
        unchanged = [
            f"{row['trial']} (seed {row['seed']})"
            for row in rows
            for recipe in rows
            if recipe["trial"] == "recipe" and recipe["seed"] == row["seed"] and row["trial"] != "recipe"
            if torch.equal(row["samples"], recipe["samples"])
        ]
        if unchanged:
            raise SystemExit("these trials trained exactly as the recipe does, so their patch did nothing: " + ", ".join(unchanged))
        print("| trial | seed | seconds |\n|---|---:|---:|")
        for row in rows:
            print(f"| {row['trial']} | {row['seed']} | {row['seconds']:.1f} |")
    else:
        print("| trial | seed | relative recognizability | classes drawn | training s |\n|---|---:|---:|---:|---:|")
        for row in rows:
            print(f"| {row['trial']} | {row['seed']} | {row['relative']:.3f} | {row['classes_drawn']} | {row['seconds']:.0f} |")
    print()
    for name in names:
        print(f"- {name}: {' '.join(TRIALS[name].description.split())}")
    print("\ncommand: python bench/quickstart_trials.py " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
