# Demo twin of the published DifFeed (../_base_/models/adm-256u-b24-t150_diffssl-diffeed_attention-head.py): the
# attention-head demo with decoder blocks 21, 24, 27, 30, 33, 36 fed back to encoder blocks 17, 14, 11, 8, 5, 2
# through C_B_R adapters.
_base_ = ['./attention-head_adm-tiny-b24-t150_demo-shapes.py']

model = dict(
    backbone=dict(type='mmdiff.DifFeedBackbone', feedback=(21, 24, 27, 30, 33, 36), adapter='conv1x1-bn-relu'))
