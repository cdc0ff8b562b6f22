# mmdiff's guard hooks, listed in every shipped config so that mmdet's, mmseg's and mmpretrain's own tools/train.py
# and tools/test.py run them as mmdiff's tools do: a NaN or infinite loss stops training before a checkpoint of the
# diverged weights is written; checkpoints keep the random generators' states for a bit-exact resume; the datasets'
# classes and the loaded checkpoint are checked before the first iteration. A config that sets its own custom_hooks
# lists these three as well, after its own (a list is replaced, not merged, by inheritance; own hooks first keep
# their custom_hooks.N indices for --cfg-options).
custom_hooks = [
    dict(type='mmdiff.NonFiniteLossHook'),
    dict(type='mmdiff.RandomStateHook'),
    dict(type='mmdiff.RunChecksHook'),
]
