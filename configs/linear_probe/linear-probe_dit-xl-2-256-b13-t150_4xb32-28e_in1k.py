# A linear probe on DiT-XL/2's frozen features on ImageNet-1k, in the diffssl papers' recipe (2x2 pooling + Linear;
# SGD lr 1e-2, StepLR(7, 0.1), 28 epochs, 4 GPUs x 32): block 13 of 28 (0-based, the middle) at t = 150, the null
# class. mmdiff's setting, not a paper's: DDAE probes DiT-XL/2 on CIFAR-10 and Tiny-ImageNet, not with this recipe.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/models/dit-xl-2-256.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/diffssl_sgd-steplr-28e.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(
    backbone=dict(_base_.dit_backbone, out_strides=None, out_blocks=(13, ), frozen=True),
    head=dict(in_channels=1152))  # DiT-XL/2's width
