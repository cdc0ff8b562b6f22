# RepFusionDistiller (Yang & Wang, ICCV 2023): a frozen diffusion U-Net teacher, seen on the clean image with the
# time embedding of a policy-drawn timestep (noise_mode='none', as the reference does), distilled into an mmpretrain
# ResNet-18 in its CIFAR layout (3x3 stem, no max-pool) by pooled, L2-normalised MSE through a 1x1 projector.
# The timestep policy is trained by REINFORCE with a reward head on the teacher's pooled features; its entropy
# bonus decays to zero (EntropyDecayHook). Experiments set the teacher's arch and weights, the tap, the policy's
# candidate timesteps and num_classes. The student sees no labels here (head=None): only the teacher's features.
_base_ = ['../mmdiff_guards.py']
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
model = dict(
    type='mmdiff.RepFusionDistiller',
    # the U-Net was trained on images in [-1, 1]; the student learns on the same inputs
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    teacher=dict(type='mmdiff.DiffusionUNetBackbone', noise_mode='none', frozen=True, out_strides=None),
    backbone=dict(type='ResNet_CIFAR', depth=18),
    alignment='pooled',
    normalize=True,
    timestep_policy=dict(type='mmdiff.TimestepPolicy'),
    entropy_weight=0.01)
custom_hooks = [dict(type='mmdiff.EntropyDecayHook')] + _base_.custom_hooks
