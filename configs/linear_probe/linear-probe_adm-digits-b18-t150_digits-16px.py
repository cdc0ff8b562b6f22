# Linear probe on the handwritten digits (held-out test split) over the frozen 'adm-digits' U-Net that
# configs/diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py pre-trains: diffssl block 18
# ('up_blocks.1.attentions.1', stride 4: the module of the papers' block 24 in the ADM-256 layout) at t = 150,
# pooled to 2x2. `make evidence-digits` sweeps every (t, block) cell of this config and compares random weights
# (model.backbone.init_cfg=None) and raw pixels.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/digits_16px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
# the EMA weights of the pre-training run (`make evidence-digits` writes it)
pretrained = 'work_dirs/digits_evidence/pretrain/iter_2000.pth'
model = dict(
    backbone=dict(arch='adm-digits', out_blocks=(18, ), init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(num_classes=10, in_channels=64, topk=(1, )))  # block 18 of the digits U-Net: 64 channels
train_cfg = dict(max_epochs=30, val_interval=10)
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
