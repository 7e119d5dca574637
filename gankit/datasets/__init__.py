"""The built-in datasets: procedural ``shapes`` and ``images`` from a folder or zip."""

from gankit.datasets.images import ImagesDataset, ImagesOptions
from gankit.datasets.shapes import ShapesDataset, ShapesOptions

__all__ = ["ImagesDataset", "ImagesOptions", "ShapesDataset", "ShapesOptions"]
