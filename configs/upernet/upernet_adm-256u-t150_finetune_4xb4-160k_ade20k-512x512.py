# Fine-tuning variant of upernet_diffusion_ade20k.py: the U-Net trains too, at a tenth of the learning rate, with
# gradient checkpointing.
_base_ = ['../upernet_diffusion_ade20k.py']

model = dict(backbone=dict(frozen=False, with_cp=True))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone.unet': dict(lr_mult=0.1)}))
