# Transfer to FGVC-Aircraft variants (100 classes) with the published linear probe and recipe of ./linear-probe_adm-256u-b24-t150_4xb32-28e_in1k.py (the diffssl repository publishes
# ImageNet scripts only; this applies them unchanged, see docs/fidelity.md).
_base_ = ['./linear-probe_adm-256u-b24-t150_4xb32-28e_in1k.py']

data_root = '{{$MMDIFF_FGVC_AIRCRAFT_ROOT:data/fgvc_aircraft/}}'
train_dataloader = dict(dataset=dict(type='FGVCAircraft', data_root=data_root, split='trainval'))
val_dataloader = dict(dataset=dict(type='FGVCAircraft', data_root=data_root, split='test'))
test_dataloader = val_dataloader
model = dict(head=dict(num_classes=100))
