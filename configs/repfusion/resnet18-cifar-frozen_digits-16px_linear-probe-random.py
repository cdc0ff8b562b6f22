# Linear probe of a frozen, randomly initialised ResNet-18 (CIFAR layout) on the handwritten digits: the baseline of
# the linear probe of the RepFusion student, which differs only in the backbone's weights (same data, schedule and
# seed). The backbone's stem and four stages are frozen with their BatchNorm statistics; only the linear head learns.
_base_ = ['./resnet18-cifar_digits-16px_scratch.py']
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
