# RepFusion on CIFAR-10 at CPU scale: the 'adm-cifar32' U-Net that
# configs/diffusion_pretraining/ddpm_adm-cifar32_1200_cifar10-32px.py pre-trains (`make evidence-cifar10` writes
# it), diffssl block 18 (stride 4, 64 channels), distilled into the CIFAR ResNet-18 on the 50,000 train images
# without their labels, mmdiff's policy choosing among six timesteps (its reward head reads the train labels; the
# student sees only the teacher's features); 400 iterations of 64 (half an epoch, about 10 minutes on a 2-core
# CPU). Then export the student (tools/model_converters/export_student.py) and fine-tune it with
# ./resnet18-cifar_cifar10-32px-100-per-class_finetune-repfusion.py.
_base_ = [
    '../_base_/models/repfusion_resnet18-cifar.py',
    '../_base_/datasets/cifar10-jpeg_32px.py',
    '../_base_/schedules/repfusion-distill_iters.py',
    'mmpretrain::_base_/default_runtime.py',
]
pretrained = 'work_dirs/cifar10_evidence/pretrain/iter_1200.pth'
model = dict(
    teacher=dict(arch='adm-cifar32', timesteps=(100, ), out_blocks=(18, ),
                 init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    timestep_policy=dict(timesteps=(10, 50, 100, 150, 250, 400)),
    num_classes=10)
max_iters = 400
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=1e-5),
]
val_dataloader, val_cfg, val_evaluator = None, None, None
test_dataloader, test_cfg, test_evaluator = None, None, None
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(by_epoch=False, interval=max_iters))
randomness = dict(seed=0)
