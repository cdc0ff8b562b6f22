# mmdet's COCO instance segmentation data (mmdet::_base_/datasets/coco_instance.py) under one data root: the
# MMDIFF_COCO_ROOT environment variable (default data/coco/, which holds annotations/, train2017/ and val2017/) sets
# every dataloader's data_root and the evaluators' annotation file.
_base_ = ['mmdet::_base_/datasets/coco_instance.py']

data_root = '{{$MMDIFF_COCO_ROOT:data/coco/}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
