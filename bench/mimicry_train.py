"""Train one of torch-mimicry's CIFAR-10 models with torch-mimicry's own
Trainer, from the user's checkout of it, on a folder of class folders:
the script bench/reference_parity.py hands bench/timed_script.py for
``--kind wgangp`` and ``--kind wgangp_cpu``.

    python bench/mimicry_train.py --mimicry /path/to/torch_mimicry-0.1.16 --model wgan_gp_32 [--ngf 64 --ndf 32] \\
        --data runs/parity/images/train --seed 0 --log-dir runs/parity-wgangp/reference-s0/log

torch-mimicry (MIT, Lee & Town 2020; github.com/kwotsin/mimicry, and
``torch-mimicry`` on the registry) is read from ``--mimicry``, the folder that
holds its ``torch_mimicry`` package. Its package ``__init__`` imports its
metrics, and they import tensorflow; only its networks and its Trainer are
needed here, so the package is entered without running that ``__init__``
(its sub-packages import as usual). The Trainer needs tensorboard and
scikit-image: ``pip install tensorboard scikit-image``.

Everything else is the project README's training example, unchanged but for
the dataset: Adam 2e-4 with betas (0.0, 0.9) for both networks, 5 D steps
per G step, 100,000 steps with linear learning-rate decay, batches of 64,
shuffled, 4 loading workers; CIFAR-10 as its ``load_cifar10_dataset``
prepares it (ToTensor, Normalize(0.5, 0.5)) but read from the folder, since
nothing may download here. The generator is the global ``netG``, which
bench/timed_script.py samples when the time is up; one latent is a vector
of ``nz`` (128).
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import types
from pathlib import Path

import numpy
import torch
import torchvision

#: --model -> (module under torch_mimicry.nets, generator class, discriminator class)
MODELS = {
    "wgan_gp_32": ("wgan_gp", "WGANGPGenerator32", "WGANGPDiscriminator32"),
    "sngan_32": ("sngan", "SNGANGenerator32", "SNGANDiscriminator32"),
    "dcgan_32": ("dcgan", "DCGANGenerator32", "DCGANDiscriminator32"),
}


def mimicry_module(checkout: Path, name: str) -> types.ModuleType:
    """``torch_mimicry.<name>`` from ``checkout``, without the package's own
    ``__init__`` (which imports tensorflow through its metrics)."""
    package_dir = checkout / "torch_mimicry"
    if not (package_dir / "nets").is_dir():
        raise SystemExit(f"--mimicry {checkout}: expected the folder holding torch-mimicry's torch_mimicry/ package (with nets/ in it)")
    if "torch_mimicry" not in sys.modules:
        package = types.ModuleType("torch_mimicry")
        package.__path__ = [str(package_dir)]
        sys.modules["torch_mimicry"] = package
    return importlib.import_module(f"torch_mimicry.{name}")


def widths(**given: int | None) -> dict[str, int]:
    """The widths given, for the networks' constructors; the others keep torch-mimicry's defaults."""
    return {name: value for name, value in given.items() if value is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mimicry", type=Path, required=True, help="the folder holding torch-mimicry's torch_mimicry/ package")
    parser.add_argument("--model", choices=sorted(MODELS), default="wgan_gp_32")
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10's training images in class folders")
    parser.add_argument("--ngf", type=int, help="the generator's width, torch-mimicry's own argument (default: the model's own)")
    parser.add_argument("--ndf", type=int, help="the discriminator's width, likewise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", type=Path, required=True)
    args = parser.parse_args()

    # torch-mimicry's example leaves seeding to the user
    torch.manual_seed(args.seed)
    numpy.random.seed(args.seed)
    random.seed(args.seed)
    package, generator_class, discriminator_class = MODELS[args.model]
    nets = mimicry_module(args.mimicry, f"nets.{package}")
    training = mimicry_module(args.mimicry, "training")

    global netG
    transform = torchvision.transforms.Compose([torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.5,), (0.5,))])
    dataset = torchvision.datasets.ImageFolder(str(args.data), transform=transform)
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=4)
    device = torch.device("cpu")
    netG = getattr(nets, generator_class)(**widths(ngf=args.ngf)).to(device)
    netD = getattr(nets, discriminator_class)(**widths(ndf=args.ndf)).to(device)
    optD = torch.optim.Adam(netD.parameters(), 2e-4, betas=(0.0, 0.9))
    optG = torch.optim.Adam(netG.parameters(), 2e-4, betas=(0.0, 0.9))
    trainer = training.Trainer(
        netD=netD,
        netG=netG,
        optD=optD,
        optG=optG,
        n_dis=5,
        num_steps=100000,
        lr_decay="linear",
        dataloader=dataloader,
        log_dir=str(args.log_dir),
        device=device,
    )
    trainer.train()


netG: torch.nn.Module | None = None

if __name__ == "__main__":
    main()
