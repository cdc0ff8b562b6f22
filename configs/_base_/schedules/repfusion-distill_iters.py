# Distillation by iterations: AdamW with gradient clipping, a 500-iteration linear warm-up, then cosine decay to
# max_iters. Experiments that change max_iters restate param_scheduler with the cosine's `end` at their max_iters
# (a config list replaces the base's): an explicit end keeps a run shortened to fewer than 500 iterations valid.
# Nothing is evaluated meanwhile: the student is judged after fine-tuning, so experiments set val_dataloader,
# val_cfg and val_evaluator to None.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000)
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=1000, eta_min=1e-5),
]
log_processor = dict(by_epoch=False)
