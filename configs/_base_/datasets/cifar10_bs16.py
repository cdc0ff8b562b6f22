# mmpretrain's CIFAR-10 data (mmpretrain::_base_/datasets/cifar10_bs16.py) under one data root: the
# MMDIFF_CIFAR10_ROOT environment variable (default data/cifar10/, which holds cifar-10-batches-py/) sets every
# dataloader's data_root.
_base_ = ['mmpretrain::_base_/datasets/cifar10_bs16.py']

data_root = '{{$MMDIFF_CIFAR10_ROOT:data/cifar10/}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
