# The diffssl papers' linear probe (scripts/linear.sh): the frozen ADM ImageNet-256 U-Net run in float16, fresh
# Gaussian noise on every forward (training and evaluation, one draw per timestep), block 24 at t = 150
# adaptive-average-pooled to 2x2 and one Linear(4096, 1000) with PyTorch's default initialisation.
_base_ = ['./adm-256u-b24-t150_linear-probe.py']

model = dict(
    backbone=dict(noise_mode='random', dtype='float16'),
    head=dict(init_cfg=None))
