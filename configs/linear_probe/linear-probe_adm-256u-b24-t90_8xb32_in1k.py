# The linear probe at t = 90, the papers' other timestep (same block, same channels).
_base_ = ['./linear-probe_adm-256u-b24-t150_8xb32_in1k.py']

model = dict(backbone=dict(timesteps=(90, )))
