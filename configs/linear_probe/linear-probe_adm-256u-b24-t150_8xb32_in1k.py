# Linear probe on ImageNet-1k: frozen ADM-256 U-Net, block 24, t = 150 (the diffssl papers' setting).
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
