"""Fitting a linear probe on cached (pooled) features, for sweeps and benchmarks."""
from typing import Tuple

import torch
from torch import Tensor, nn


def fit_linear_probe(train_features: Tensor,
                     train_labels: Tensor,
                     val_features: Tensor,
                     val_labels: Tensor,
                     epochs: int = 100,
                     batch_size: int = 256,
                     lr: float = 1e-2,
                     weight_decay: float = 1e-4,
                     seed: int = 0) -> Tuple[float, nn.Linear]:
    """Train a softmax classifier on standardised flattened features; return its held-out top-1 (%) and itself.

    Args:
        train_features (Tensor): ``(N, ...)`` training features, flattened per sample.
        train_labels (Tensor): ``(N,)`` integer labels.
        val_features (Tensor): ``(M, ...)`` held-out features.
        val_labels (Tensor): ``(M,)`` held-out labels.
        epochs (int): Passes over the training set (AdamW). Defaults to 100.
        batch_size (int): Samples per step. Defaults to 256.
        lr (float): Learning rate. Defaults to 1e-2.
        weight_decay (float): AdamW weight decay. Defaults to 1e-4.
        seed (int): Seed of the initialisation and the shuffling. Defaults to 0.
    """
    generator = torch.Generator().manual_seed(seed)
    train_x = train_features.flatten(1).float()
    val_x = val_features.flatten(1).float()
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    torch.manual_seed(seed)
    probe = nn.Linear(train_x.shape[1], num_classes)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        for batch in torch.randperm(len(train_x), generator=generator).split(batch_size):
            loss = nn.functional.cross_entropy(probe(train_x[batch]), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (probe(val_x).argmax(1) == val_labels).float().mean().item() * 100
    return accuracy, probe
