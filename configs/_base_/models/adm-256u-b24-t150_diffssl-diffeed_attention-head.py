# The published DifFeed (scripts/feedback.sh, ssl_diff/ssl_model_feedback_fusion.py): a first pass of the frozen
# U-Net gives decoder blocks 21, 24, 27, 30, 33 and 36; each goes through a C_B_R adapter (1x1 convolution without
# bias, BatchNorm, ReLU) and is added to the output of its mirror encoder block 38 - b (17, 14, 11, 8, 5, 2) in a
# second pass on the same noised input; the published attention head reads block 24 of the second pass. The
# adapters and the head train.
_base_ = ['./adm-256u-b24-t150_diffssl-attention-head.py']

model = dict(
    backbone=dict(type='mmdiff.DifFeedBackbone', feedback=(21, 24, 27, 30, 33, 36), adapter='conv1x1-bn-relu'))
# diffssl's finetune.py calls model.train() once and its test() model.eval(), which nothing undoes: from the first
# evaluation (epoch 7) on, the model trains in eval mode, so the adapters' BatchNorm layers normalise with their
# running statistics, which stop moving. mmdiff's lighter DifFeed (diffeed-lite) keeps batch statistics throughout.
custom_hooks = [dict(type='mmdiff.EvalModeAfterFirstValHook')] + _base_.custom_hooks
