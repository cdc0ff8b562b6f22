# mmdiff's lighter DifFeed (not the published one; see ./adm-256u-b24-t150_diffssl-diffeed_attention-head.py):
# only the head's block 24 is fed back, to its mirror 14, through a zero-started gated Conv3x3-BN-ReLU adapter (an
# untrained model gives the plain features), with the lighter attention head.
_base_ = ['./adm-256u-b24-t150_attention-head-lite.py']

model = dict(backbone=dict(type='mmdiff.DifFeedBackbone', feedback=None, adapter='gated-conv3x3-bn-relu'))
