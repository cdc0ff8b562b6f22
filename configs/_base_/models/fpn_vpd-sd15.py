# VPD's segmentor (Zhao et al. 2023, github wl-zhao/VPD @ 92095ab, segmentation/models/vpd_seg.py, vpd/models.py,
# segmentation/configs/fpn_vpd_sd1-5_512x512_gpu8x2.py) on mmseg's EncoderDecoder, with mmseg's Semantic FPN:
# - images in [-1, 1] -> the VAE's unscaled posterior mode (`encoder_vq.encode(img).mode()`, no 0.18215);
# - Stable Diffusion 1.5's U-Net at t = 1 on those clean latents, cross-attending to the 150 ADE20K CLIP class
#   embeddings through VPD's TextAdapter (c + gamma * MLP(c), Linear-GELU-Linear 768-768-768, gamma starting at 1e-4);
# - the outputs of ldm output_blocks 1, 4, 7 and 11 (strides 64, 32, 16, 8 of the image), the stride-16 and stride-32
#   ones with the mean over heads and over the encoder and decoder cross-attention layers at that stride of their
#   attention maps appended (one channel per class): FPN in_channels [320, 790, 1430, 1280]; the maps carry no
#   gradient (ldm's checkpoint function runs each BasicTransformerBlock's forward under no_grad, so the maps its
#   attention controller stores are constants; the blocks' outputs are recomputed with gradient in backward);
# - the U-Net is fine-tuned (the schedule gives it lr_mult 0.1), the VAE is frozen, the class embeddings are fixed.
# docs/fidelity.md (VPD) lists every aspect with the reference line and what mmdiff does.
_base_ = ['mmseg::_base_/models/fpn_r50.py', './sd15-unet.py']

custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
# VPD's segmentation/class_embeddings.pth: (150, 768) CLIP text embeddings of the ADE20K classes, a plain tensor
class_embeddings = 'checkpoints/vpd_ade20k_class_embeddings.pth'
model = dict(
    # the VAE was trained on images in [-1, 1]; padding after normalisation with 0 (VPD's Pad after Normalize)
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], size=(512, 512)),
    pretrained=None,
    backbone=dict(
        _base_.sd15_backbone,
        vae_latents='unscaled',
        context=dict(type='file', path=class_embeddings, num_tokens=150, adapter=True, adapter_hidden_channels=768,
                     adapter_gamma=1e-4),
        out_strides=None,
        # ldm output_blocks 11, 7, 4, 1 (diffssl numbers 25, 21, 18, 15 of this layout)
        out_blocks=('up_blocks.3.attentions.2', 'up_blocks.2.attentions.1', 'up_blocks.1.attentions.1',
                    'up_blocks.0.resnets.1'),
        attention_maps=(16, 32),
        attention_maps_grad=False,  # VPD's maps are constants of its checkpointed forward (see the header)
        frozen=False,
        with_cp=True),  # ldm's use_checkpoint=True (v1-inference.yaml): memory only, the same numbers
    neck=dict(type='FPN', in_channels=[320, 790, 1430, 1280], out_channels=256, num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[8, 16, 32, 64],  # VPD keeps fpn_r50's [4, 8, 16, 32]: FPNHead uses only their ratios
        channels=256,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
