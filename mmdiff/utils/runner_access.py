"""What the runner hands over, unwrapped: the model inside a DDP wrapper, the labels of a batch's data samples."""
from typing import Optional, Sequence

import torch
from mmengine.model import is_model_wrapper
from torch import Tensor, nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model itself, also when it is wrapped (``MMDistributedDataParallel`` and other mmengine wrappers)."""
    return model.module if is_model_wrapper(model) else model


def gt_labels(data_samples: Optional[Sequence]) -> Optional[Tensor]:
    """The ``(N,)`` ground-truth labels of mmpretrain ``DataSample`` s, or None when the samples carry none."""
    if not data_samples or 'gt_label' not in data_samples[0]:
        return None
    return torch.cat([sample.gt_label for sample in data_samples])
