# The segmentation demo: UperNet on the synthetic shapes in the ADE20K layout
# (mmdiff.datasets.synthetic_shapes.make_shapes_segmentation_dataset) with the tiny ADM-layout U-Net, small enough
# to train and evaluate on a 2-core CPU in minutes. The tiny U-Net has random weights, so it is fine-tuned.
_base_ = ['../upernet_diffusion_ade20k.py']

data_root = '{{$MMDIFF_DEMO_SHAPES_SEG_ROOT:data/demo_shapes_seg/}}'
classes = ('circle', 'square', 'triangle', 'star')
crop_size = (128, 128)
max_iters = 1000
width = 64  # head width (512 in the full config)
norm_cfg = dict(type='BN', requires_grad=True)  # one process on a CPU: no SyncBN

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='adm-tiny', timesteps=(10, ), frozen=False, init_cfg=None),
    # most pixels are background (label 0, ignored): average the loss over the labelled ones only
    decode_head=dict(
        in_channels=[32, 32, 64, 64],  # the tiny U-Net at strides 4/8/16/32
        channels=width,
        num_classes=4,  # the 4 shapes
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(
        in_channels=64,
        channels=width,
        num_classes=4,  # the 4 shapes
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)),
    test_cfg=dict(mode='whole'))

metainfo = dict(classes=classes, palette=[[220, 20, 60], [0, 128, 255], [255, 200, 0], [120, 200, 80]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(by_epoch=False, interval=max_iters))
randomness = dict(seed=0)
