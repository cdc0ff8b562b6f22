# The published linear probe at t = 90.
_base_ = ['./linear-probe_adm-256u-b24-t150_4xb32-28e_in1k.py']

model = dict(backbone=dict(timesteps=(90, )))
