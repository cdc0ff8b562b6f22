# The from-scratch baseline given the student's whole RepFusion budget: distillation shows the student 1,000 batches
# of 64 images (47.5 epochs of the 1,347 training digits) before its 10 fine-tuning epochs, so this run trains the
# same ResNet-18 from scratch for 58 epochs with the same recipe.
_base_ = ['./resnet18-cifar_digits-16px_scratch.py']
epochs = 58
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs, eta_min=1e-4)]
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
default_hooks = dict(checkpoint=dict(interval=epochs))
