# Fine-tuning variant of mask_rcnn_diffusion_coco.py: the U-Net trains too, at a tenth of the learning rate,
# with gradient checkpointing to fit its activations in memory.
_base_ = ['../mask_rcnn_diffusion_coco.py']

model = dict(backbone=dict(frozen=False, with_cp=True))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone.unet': dict(lr_mult=0.1)}))
