# VPD on ADE20K as published (wl-zhao/VPD @ 92095ab, segmentation/configs/fpn_vpd_sd1-5_512x512_gpu8x2.py):
# Stable Diffusion 1.5 with the class-embedding context and cross-attention maps, Semantic FPN, 512x512 crops,
# 8 GPUs x 2 images, 80k iterations (tools/dist_train.sh this-config 8). mmdiff's frozen UperNet variant is
# configs/upernet/upernet_sd15-t1_4xb4-160k_ade20k-512x512.py.
_base_ = [
    '../_base_/models/fpn_vpd-sd15.py',
    '../_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/mmdiff_guards.py',
    '../_base_/schedules/vpd_adamw-poly-80k.py',
]

# VPD's data = dict(samples_per_gpu=2, workers_per_gpu=8); the pipelines are mmseg's ADE20K ones, VPD's too
train_dataloader = dict(batch_size=2, num_workers=8)
custom_hooks = [dict(type='mmdiff.EvalProgressBarHook')] + _base_.custom_hooks  # a progress bar while evaluating
