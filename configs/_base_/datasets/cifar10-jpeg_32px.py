# CIFAR-10 as JPEG files in the ImageNet-style folder layout (train/<class>/*.jpg, test/<class>/*.jpg: 50,000 and
# 10,000 images at 32x32), read by mmpretrain's CustomDataset; the class folders in alphabetical order give the
# label indices. The MMDIFF_CIFAR10_JPEG_ROOT environment variable (default data/cifar10-jpeg/) names the folder;
# `make evidence-cifar10` extracts ../shared/data/cifar10-jpeg.tar.gz there. The images all have one size, so
# batches are stacked into one tensor (default_collate). Evaluation is on the whole test folder.
data_root = '{{$MMDIFF_CIFAR10_JPEG_ROOT:data/cifar10-jpeg/}}'
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='test', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
