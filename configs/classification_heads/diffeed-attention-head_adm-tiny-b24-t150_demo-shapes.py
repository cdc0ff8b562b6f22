# Demo twin of the DifFeed configs: the attention-head demo with block 24 fed back to its mirror, block 14.
_base_ = ['./attention-head_adm-tiny-b24-t150_demo-shapes.py']

model = dict(backbone=dict(type='DifFeedBackbone', feedback=None))
