# Fewer labels on CIFAR-10: the from-scratch ResNet-18 on 10 train images per class (100 images, the first of each
# class folder), 50 epochs in batches of 32, evaluated on all 10,000 test images. The baseline of
# ./resnet18-cifar_cifar10-32px-10-per-class_finetune-repfusion.py.
_base_ = ['./resnet18-cifar_cifar10-32px-100-per-class_scratch.py']
epochs = 50
train_dataloader = dict(batch_size=32, dataset=dict(labels_per_class=10))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs, eta_min=1e-4)]
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
default_hooks = dict(checkpoint=dict(interval=epochs))
