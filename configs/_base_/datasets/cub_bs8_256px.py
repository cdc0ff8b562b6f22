# CUB-200-2011 birds (200 classes) with the fine-grained pipelines at 256x256, from data/CUB_200_2011.
_base_ = ['./fine-grained_bs8_256px.py']

data_root = 'data/CUB_200_2011'
train_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='test'))
test_dataloader = val_dataloader
