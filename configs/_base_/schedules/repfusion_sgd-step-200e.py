# RepFusion's published recipe (Adamdad/Repfusion configs/cifar10-hint/ddpm-r18_hint_cifar10.py and
# configs/baseline/*_finetune.py): SGD lr 0.1, momentum 0.9, weight decay 1e-4 on every parameter, the learning rate
# divided by 10 at epochs 100 and 150, 200 epochs. The configs that use the reference's mmcv EMAHook (momentum 1e-3
# per iteration; the averaged weights are the ones saved and evaluated) add mmengine's EMAHook with that momentum.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[100, 150], gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=200)
