"""The recognizability metric: a classifier of the real data names real
images with confidence and noise without, and is trained once per dataset."""

from __future__ import annotations

import pytest
import torch

from gankit import BuildContext, Generator, ImageList, MetricContext, UserError, default_registry, to_float_images
from gankit.metrics.recognizability import Recognizability, RecognizabilityOptions

OPTIONS = RecognizabilityOptions(images=96, epochs=6, width=16, threshold=0.5)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _shapes(size: int = 1000, resolution: int = 16):
    shapes = default_registry().get("dataset", "shapes")
    dataset = shapes.factory(shapes.options(resolution=resolution, size=size))
    dataset.prepare()
    return dataset


class Replay(Generator):
    """Draws the dataset's own held-out images: a generator as good as the data."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.latent_size, self.dataset = 1, dataset
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def sample_latents(self, n, device="cpu", generator=None) -> torch.Tensor:
        return torch.arange(n, dtype=torch.float32, device=device)[:, None]

    def forward(self, z, labels=None) -> ImageList:
        indices = [5 * int(i) for i in z[:, 0]]  # every fifth image is held out of the classifier's training
        return [to_float_images(self.dataset.__getitems__(indices)[0])]


class Noise(Generator):
    def __init__(self, context: BuildContext) -> None:
        super().__init__()
        self.latent_size, self.context = 4, context
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, labels=None) -> ImageList:
        rng = torch.Generator().manual_seed(int(z.abs().sum() * 1000) % 2**31)
        size = self.context.resolution
        return [torch.rand(z.shape[0], 3, size, size, generator=rng) * 2 - 1]


def _score(generator, dataset) -> dict:
    return Recognizability(OPTIONS).evaluate(MetricContext(generator, dataset, torch.device("cpu"), 32, 0))


def test_real_images_are_recognized_and_noise_is_not(private_cache):
    dataset = _shapes()
    real = _score(Replay(dataset), dataset)
    # the replayed images are the held-out real ones, so both shares agree
    assert real["recognizable"] == pytest.approx(real["recognizable_real"], abs=0.02), real
    assert real["classifier_accuracy"] > 1 / 6 and real["recognizable_real"] > 0, real
    noise = _score(Noise(dataset.context), dataset)
    assert noise["recognizable"] < 0.5 * real["recognizable_real"], (noise, real)
    assert noise["classifier_accuracy"] == real["classifier_accuracy"]  # the same cached classifier
    assert len(list((private_cache / "classifiers").iterdir())) == 1


def test_it_needs_labelled_images():
    toy = default_registry().get("dataset", "shapes")
    dataset = toy.factory(toy.options(resolution=16, size=50))
    dataset.context = BuildContext(resolution=16, channels=3, num_classes=0)
    with pytest.raises(UserError, match="labelled images"):
        _score(Noise(dataset.context), dataset)
