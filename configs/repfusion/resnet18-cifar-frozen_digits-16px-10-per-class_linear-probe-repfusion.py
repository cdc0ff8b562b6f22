# Few labels, frozen: a linear probe of the label-free RepFusion student on 10 training digits per class (the
# schedule of the few-label fine-tuning; the backbone's stem, stages and BatchNorm statistics stay fixed).
_base_ = ['./resnet18-cifar_digits-16px-10-per-class_finetune-repfusion.py']
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
