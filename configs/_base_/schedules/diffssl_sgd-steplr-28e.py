# The diffssl papers' head training (finetune.py with scripts/{linear,attention,fusion,feedback}.sh): plain SGD
# (no momentum, no weight decay) on the head (and DifFeed's adapters), the learning rate divided by 10 every
# 7 epochs, 28 epochs, evaluation every 7. lr 1e-2 as for the linear probe and DifFeed; the attention-head and
# DifFormer configs set 5e-2. The published runs use 4 GPUs x 32 images (DifFeed 4 x 4).
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1e-2, momentum=0.0, weight_decay=0.0))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=7, gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=28, val_interval=7)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
