"""The scores, as functions of feature tensors: the Fréchet distance (FID),
the kernel distance (KID) and k-nearest-neighbour precision and recall.
Nothing here knows about images or networks."""

from __future__ import annotations

import math

import numpy as np
import torch

from gankit.errors import UserError


def mean_and_covariance(features: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 mean and unbiased covariance (numpy's ``np.cov``, as the TF
    reference computes them) of [N, D] features, accumulated in chunks so 50k
    x 2048 never exists in float64 at once."""
    count, dim = features.shape
    if count < 2:
        raise UserError(f"a covariance needs at least 2 images, got {count}")
    mean = features.double().mean(dim=0)
    scatter = torch.zeros(dim, dim, dtype=torch.float64, device=features.device)
    for start in range(0, count, chunk):
        centred = features[start : start + chunk].double() - mean
        scatter.addmm_(centred.T, centred)
    return mean, scatter / (count - 1)


def frechet_distance(mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor) -> float:
    """d² = |μ1 − μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½) between two Gaussians
    (Heusel et al. 2017, §"Fréchet Inception Distance"), with the matrix
    square root from ``scipy.linalg.sqrtm`` as in their TTUR code, pytorch-fid
    and StyleGAN2-ADA. tests/test_metrics.py checks it against the
    eigenvalues of Σ1^½ Σ2 Σ1^½."""
    try:
        import scipy.linalg
    except ImportError:
        raise UserError("FID needs scipy for its matrix square root: pip install 'gankit[fid]'") from None
    mu1, mu2 = mean1.double().cpu().numpy(), mean2.double().cpu().numpy()
    sigma1, sigma2 = cov1.double().cpu().numpy(), cov2.double().cpu().numpy()
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # a singular product (fewer images than dimensions): nudge both
        # covariances off singularity, as the TTUR code does
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    # sqrtm of a product of two PSD matrices is real up to rounding; the
    # imaginary residue is dropped, as every reference implementation does
    covmean = np.real(covmean)
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (xᵀy / d + 1)³, KID's kernel (Bińkowski et al. 2018, §4)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimate of MMD² between samples x [m, d] and y [n, d]
    (Gretton et al. 2012, Lemma 6; the estimator of Bińkowski et al. 2018):
    the within-set kernel means leave out i = j."""
    m, n = x.shape[0], y.shape[0]
    x, y = x.double(), y.double()
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int, seed: int) -> tuple[float, float, int]:
    """KID (Bińkowski et al. 2018, §4): the unbiased MMD² over ``subsets``
    random subsets of ``subset_size`` images from each set (fewer when a set
    is smaller); returns the mean, the standard deviation over subsets and
    the subset size used."""
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < 2:
        raise UserError(f"KID needs at least 2 images in each set, got {real.shape[0]} real and {fake.shape[0]} generated")
    rng = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        fake_rows = torch.randperm(fake.shape[0], generator=rng)[:size].to(fake.device)
        real_rows = torch.randperm(real.shape[0], generator=rng)[:size].to(real.device)
        values.append(mmd2_unbiased(fake[fake_rows], real[real_rows]))
    spread = float(np.std(values)) if len(values) > 1 else math.nan
    return float(np.mean(values)), spread, size


def _distance_blocks(queries: torch.Tensor, points: torch.Tensor, block: int = 1024):  # type: ignore[no-untyped-def]
    for start in range(0, queries.shape[0], block):
        yield torch.cdist(queries[start : start + block], points)


def neighbourhood_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour in the same set,
    itself left out (it is its own nearest, at distance 0)."""
    if points.shape[0] <= k:
        raise UserError(f"precision and recall with k = {k} need more than {k} images in each set, got {points.shape[0]}", key="k")
    return torch.cat([distances.kthvalue(k + 1, dim=1).values for distances in _distance_blocks(points, points)])


def fraction_inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """The share of ``queries`` inside at least one ball (centre, radius)."""
    inside = [(distances <= radii[None, :]).any(dim=1) for distances in _distance_blocks(queries, centres)]
    return float(torch.cat(inside).float().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, §2): each
    set's manifold is the union of balls reaching every feature's k-th
    nearest neighbour; precision is the share of generated features inside
    the real manifold, recall the share of real features inside the
    generated one."""
    precision = fraction_inside(fake, real, neighbourhood_radii(real, k))
    recall = fraction_inside(real, fake, neighbourhood_radii(fake, k))
    return precision, recall
