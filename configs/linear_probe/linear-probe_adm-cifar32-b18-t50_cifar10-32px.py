# Linear probe on CIFAR-10 (all 10,000 test images) over the frozen 'adm-cifar32' U-Net that
# configs/diffusion_pretraining/ddpm_adm-cifar32_1200_cifar10-32px.py pre-trains: diffssl block 18
# ('up_blocks.1.attentions.1', stride 4: the module of the papers' block 24 in the ADM-256 layout) at t = 50,
# pooled to 2x2, fitted on 1,000 train images per class (the first of each class folder: 10,000 of the 50,000).
# `make evidence-cifar10` sweeps a timestep x block grid of this config and compares random weights
# (model.backbone.init_cfg=None) and raw pixels.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/cifar10-jpeg_32px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
# the EMA weights of the pre-training run (`make evidence-cifar10` writes it)
pretrained = 'work_dirs/cifar10_evidence/pretrain/iter_1200.pth'
model = dict(
    backbone=dict(arch='adm-cifar32', timesteps=(50, ), out_blocks=(18, ),
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(num_classes=10, in_channels=64, topk=(1, )))  # block 18 of the adm-cifar32 U-Net: 64 channels
train_dataloader = dict(
    dataset=dict(_delete_=True, type='mmdiff.PerClassSubset', labels_per_class=1000,
                 dataset=_base_.train_dataloader.dataset))
train_cfg = dict(max_epochs=30, val_interval=10)
default_hooks = dict(logger=dict(interval=50))
randomness = dict(seed=0)
