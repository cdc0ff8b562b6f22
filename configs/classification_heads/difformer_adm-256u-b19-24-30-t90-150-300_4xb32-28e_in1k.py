# The published DifFormer on ImageNet-1k (scripts/fusion.sh): blocks 19, 24, 30 x t = 90, 150, 300 of the frozen
# float16 ADM-256 U-Net with fresh noise per forward; SGD lr 5e-2, StepLR(7, 0.1), 28 epochs, 4 GPUs x 32.
_base_ = [
    '../_base_/models/adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/diffssl_sgd-steplr-28e.py',
    'mmpretrain::_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=5e-2))
