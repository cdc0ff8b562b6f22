# The generated shapes classification set (mmdiff.datasets.synthetic_shapes.make_shapes_classification_dataset):
# 64x64 images in mmpretrain's CustomDataset folder layout, root/{train,val}/<class>/<index>.png.
data_root = '{{$MMDIFF_DEMO_SHAPES_CLS_ROOT:data/demo_shapes_cls/}}'
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
