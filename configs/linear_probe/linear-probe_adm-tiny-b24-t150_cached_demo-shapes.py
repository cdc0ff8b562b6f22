# The linear-probe demo trained from a feature cache instead of the live U-Net. Write the cache first:
#   python tools/feature_tools/extract_features.py configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py \
#       --split train --out work_dirs/feature_cache/linear-probe_adm-tiny-b24-t150_demo-shapes/train
# and the same with --split val (.../val). The dataset refuses a cache written for another backbone or dataset.
_base_ = ['./linear-probe_adm-tiny-b24-t150_demo-shapes.py']

custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
cache_root = 'work_dirs/feature_cache/linear-probe_adm-tiny-b24-t150_demo-shapes/'
model = dict(
    backbone=dict(_delete_=True, type='mmdiff.CachedFeatureBackbone'),
    data_preprocessor=dict(_delete_=True, type='ClsDataPreprocessor'))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='mmdiff.CachedFeatureDataset',
        cache_dir=cache_root + 'train',
        expected_backbone={{_base_.model.backbone}},
        expected_dataset={{_base_.train_dataloader.dataset}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='mmdiff.CachedFeatureDataset',
        cache_dir=cache_root + 'val',
        expected_backbone={{_base_.model.backbone}},
        expected_dataset={{_base_.val_dataloader.dataset}}))
test_dataloader = val_dataloader
