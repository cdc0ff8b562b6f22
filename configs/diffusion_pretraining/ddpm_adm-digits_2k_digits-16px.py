# Denoising diffusion pre-training (epsilon prediction, linear schedule, T = 1000) of the 'adm-digits' U-Net on the
# train split of the handwritten digits, with EMA weights and a sample grid every 500 iterations. About 13 minutes
# on a 2-core CPU. Its checkpoints load into DiffusionUNetBackbone(arch='adm-digits') with init_cfg Pretrained,
# as configs/linear_probe/linear-probe_adm-digits-b18-t150_digits-16px.py does.
_base_ = ['../_base_/datasets/digits_16px.py', '../_base_/schedules/ddpm-pretrain_adamw-cosine.py']
model = dict(arch='adm-digits')
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader, val_evaluator, test_dataloader, test_evaluator = None, None, None, None
