# mmpretrain's ResNet-18 in its CIFAR layout (3x3 stem, no max-pool) with global average pooling and a linear head
# over 10 classes, on images in [-1, 1] (RGB): the classifier that RepFusion's students are fine-tuned as, and that
# the from-scratch baselines train. Experiments set the data, the schedule and, for a student, its init_cfg.
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    backbone=dict(type='ResNet_CIFAR', depth=18),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=512, loss=dict(type='CrossEntropyLoss'),
              topk=(1, )))
