# Tiny-ImageNet (200 classes, 64x64) in mmpretrain's CustomDataset folder layout: data/tiny-imagenet-200/train/<wnid>/
# *.JPEG, and val/ rearranged into the same <wnid>/ folders (from val_annotations.txt). Random crop with 4-pixel
# padding and horizontal flips for training, as for CIFAR.
data_root = '{{$MMDIFF_TINY_IMAGENET_ROOT:data/tiny-imagenet-200/}}'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=64, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
