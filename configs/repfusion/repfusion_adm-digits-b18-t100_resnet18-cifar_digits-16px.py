# Fixed-timestep ablation of the digits RepFusion run: the teacher always at its configured t = 100, no policy.
_base_ = ['./repfusion_adm-digits-b18-policy_resnet18-cifar_digits-16px.py']
model = dict(timestep_policy=None, num_classes=None)
custom_hooks = [  # the guards without EntropyDecayHook
    dict(type='mmdiff.NonFiniteLossHook'),
    dict(type='mmdiff.RandomStateHook'),
    dict(type='mmdiff.RunChecksHook'),
]
