# mmpretrain's ImageNet-1k dataset with the diffssl papers' pipeline at 256x256: guided-diffusion's
# image_datasets.py as diffssl's finetune.py loads it (load_data(random_crop=True, random_flip=True) for training,
# center crops for evaluation). PIL decodes, ignoring the EXIF orientation tag as guided-diffusion's loader does
# (Image.open(...).convert('RGB'); mmcv's default 'color' would rotate such a photo); training images are resized
# on the short side to a random 256-320 and random-cropped to 256, then flipped with p = 0.5; evaluation images are
# resized to 256 and center-cropped.
# 32 images per process (ADMResizeCrop is mmdiff's: custom_imports=['mmdiff']). The MMDIFF_IMAGENET_ROOT
# environment variable (default data/imagenet/, mmpretrain's ImageNet layout) sets every dataloader's data_root.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs32.py']

data_root = '{{$MMDIFF_IMAGENET_ROOT:data/imagenet/}}'

train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', color_type='color_ignore_orientation'),
    dict(type='mmdiff.ADMResizeCrop', image_size=256, random_crop=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', color_type='color_ignore_orientation'),
    dict(type='mmdiff.ADMResizeCrop', image_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
