# Few labels: the from-scratch ResNet-18 on only 10 training digits per class (100 images, the first of each class
# in the train split), 100 epochs in batches of 32, evaluated on the whole 450-image test split. The baseline of
# fine-tuning a RepFusion student on the same 100 labels.
_base_ = ['./resnet18-cifar_digits-16px_scratch.py']
epochs = 100
train_dataloader = dict(batch_size=32, dataset=dict(labels_per_class=10))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs, eta_min=1e-4)]
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
default_hooks = dict(checkpoint=dict(interval=epochs))
