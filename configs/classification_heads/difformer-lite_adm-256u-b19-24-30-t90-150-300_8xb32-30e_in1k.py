# mmdiff's lighter DifFormer on ImageNet-1k (not the published setting: difformer_*_4xb32-28e_in1k.py is):
# blocks 19, 24, 30 x t = 90, 150, 300, fixed seeded noise, float32; AdamW with cosine decay, 30 epochs.
_base_ = [
    '../_base_/models/adm-256u-b19-24-30-t90-150-300_difformer-lite.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
