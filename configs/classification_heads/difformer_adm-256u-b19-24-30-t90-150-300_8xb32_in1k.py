# DifFormer on ImageNet-1k: blocks 19, 24, 30 x t = 90, 150, 300 of the frozen ADM-256 U-Net.
_base_ = [
    '../_base_/models/adm-256u-b19-24-30-t90-150-300_difformer.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
