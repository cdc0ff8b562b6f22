# RepFusion at demo scale (the twin of the CIFAR-10 experiment): the 'adm-digits' U-Net that
# configs/diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py pre-trains (`make evidence-digits` writes it),
# diffssl block 18 (stride 4), distilled into a ResNet-18 on the train split of the handwritten digits, the policy
# choosing among six timesteps. About 10 minutes on a 2-core CPU. Then:
#   python tools/model_converters/export_student.py work_dirs/<this config>/iter_1000.pth --out
# work_dirs/repfusion_digits/student.pth
#   python tools/train.py configs/repfusion/resnet18-cifar_digits-16px_finetune-repfusion.py
_base_ = [
    '../_base_/models/repfusion_resnet18-cifar.py',
    '../_base_/datasets/digits_16px.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
pretrained = 'work_dirs/digits_evidence/pretrain/iter_2000.pth'
model = dict(
    teacher=dict(arch='adm-digits', timesteps=(100, ), out_blocks=(18, ),
                 init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    timestep_policy=dict(timesteps=(10, 50, 100, 150, 250, 400)),
    num_classes=10)

# distillation by iterations; nothing is evaluated meanwhile: the student is judged after fine-tuning
max_iters = 1000
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
val_dataloader, val_cfg, val_evaluator = None, None, None
test_dataloader, test_cfg, test_evaluator = None, None, None
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
