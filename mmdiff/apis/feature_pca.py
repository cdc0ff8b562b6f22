"""Feature maps as pictures: the first three principal components mapped to RGB."""
import numpy as np
import torch
from torch import Tensor


def pca_rgb(feature: Tensor) -> np.ndarray:
    """Project a ``(C, h, w)`` feature map on its first three principal components, scaled to ``(h, w, 3)`` uint8.

    Each component is stretched between its 1st and 99th percentile. Maps with fewer than three channels or
    positions leave the missing components black.
    """
    channels, height, width = feature.shape
    samples = feature.float().flatten(1).T  # (h * w, C)
    samples = samples - samples.mean(0)
    components = min(3, channels, samples.shape[0])
    _, _, right = torch.linalg.svd(samples, full_matrices=False)
    projected = samples @ right[:components].T  # (h * w, components)
    low = torch.quantile(projected, 0.01, dim=0)
    high = torch.quantile(projected, 0.99, dim=0)
    scaled = ((projected - low) / (high - low).clamp_min(1e-8)).clamp(0, 1)
    rgb = torch.zeros(height * width, 3)
    rgb[:, :components] = scaled
    return (rgb.view(height, width, 3).numpy() * 255).astype(np.uint8)
