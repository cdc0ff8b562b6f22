# The demos' short schedule for a head on frozen features: frozen-probe_30e's AdamW for 10 epochs, cosine decay
# from the first epoch (no warm-up), validated once at the end.
_base_ = ['./frozen-probe_30e.py']

train_cfg = dict(max_epochs=10, val_interval=10)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=10, eta_min=1e-6)]
