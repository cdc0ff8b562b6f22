# Distillation by iterations: AdamW with gradient clipping, a linear warm-up, then cosine decay to max_iters.
# Experiments that change max_iters restate train_cfg and param_scheduler (a config list replaces the base's).
# Nothing is evaluated meanwhile: the student is judged after fine-tuning, so experiments set val_dataloader,
# val_cfg and val_evaluator to None.
max_iters = 1000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
log_processor = dict(by_epoch=False)
