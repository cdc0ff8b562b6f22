# The diffssl papers' attention head on ImageNet-1k (scripts/attention.sh): frozen float16 ADM-256 U-Net, block 24
# at t = 150 with fresh noise per forward; SGD lr 5e-2, StepLR(7, 0.1), 28 epochs, 4 GPUs x 32.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffssl-attention-head.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/diffssl_sgd-steplr-28e.py',
    'mmpretrain::_base_/default_runtime.py',
]

optim_wrapper = dict(optimizer=dict(lr=5e-2))
