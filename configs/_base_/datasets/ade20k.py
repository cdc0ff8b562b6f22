# mmseg's ADE20K data (mmseg::_base_/datasets/ade20k.py: 512x512 crops) under one data root: the MMDIFF_ADE20K_ROOT
# environment variable (default data/ade/ADEChallengeData2016/, which holds images/ and annotations/) sets every
# dataloader's data_root.
_base_ = ['mmseg::_base_/datasets/ade20k.py']

data_root = '{{$MMDIFF_ADE20K_ROOT:data/ade/ADEChallengeData2016/}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
