# The published DifFeed on ImageNet-1k (scripts/feedback.sh): decoder blocks 21-36 fed back to encoder blocks
# 17-2 through C_B_R adapters, the attention head on block 24 of the second pass, t = 150; SGD lr 1e-2,
# StepLR(7, 0.1), 28 epochs, 4 GPUs x 4.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffssl-diffeed_attention-head.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/diffssl_sgd-steplr-28e.py',
    'mmpretrain::_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=4)
val_dataloader = dict(batch_size=4)
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=16)
