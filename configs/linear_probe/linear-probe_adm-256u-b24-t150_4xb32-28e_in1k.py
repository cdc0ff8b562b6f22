# The diffssl papers' linear probe on ImageNet-1k (scripts/linear.sh): frozen float16 ADM-256 U-Net, block 24 at
# t = 150 with fresh noise per forward, 2x2 pooling + Linear; SGD lr 1e-2, StepLR(7, 0.1), 28 epochs, 4 GPUs x 32.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffssl-linear-probe.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/diffssl_sgd-steplr-28e.py',
    'mmpretrain::_base_/default_runtime.py',
]
