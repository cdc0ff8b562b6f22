# scikit-learn's handwritten digits (mmdiff.datasets.digits.DigitsDataset): the 1,797 real 8x8 scans upsampled to
# 16x16, split by a stratified shuffle fixed by split_seed into 1,347 train and 450 test images. In memory: no files.
# Configs import 'mmdiff' (custom_imports), which registers it. The images all have one size, so batches are stacked
# into one tensor (default_collate): DataLoader workers hand one array per batch to the model's process instead of 64.
dataset = dict(
    type='mmdiff.DigitsDataset', image_size=16, test_fraction=0.25, split_seed=0, pipeline=[dict(type='PackInputs')])
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(dataset, split='train'),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(dataset, split='test'),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
