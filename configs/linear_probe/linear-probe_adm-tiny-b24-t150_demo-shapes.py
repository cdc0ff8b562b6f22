# Demo twin of the linear-probe configs: the tiny ADM-layout U-Net (random weights, frozen), block 24 at t = 150,
# on the generated shapes classification set. Runs on a CPU in seconds.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/shapes-classification_bs16.py',
    '../_base_/schedules/frozen-probe_10e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch='adm-tiny', init_cfg=None),
    head=dict(num_classes=4, in_channels=64, topk=(1, )))  # block 24 of the tiny U-Net: 64 channels
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
