"""The built-in datasets: procedural ``shapes``, ``mnist`` digits and ``images`` from a folder or zip."""

from gankit.datasets.images import ImagesDataset, ImagesOptions
from gankit.datasets.mnist import MnistDataset, MnistOptions
from gankit.datasets.shapes import ShapesDataset, ShapesOptions

__all__ = ["ImagesDataset", "ImagesOptions", "MnistDataset", "MnistOptions", "ShapesDataset", "ShapesOptions"]
