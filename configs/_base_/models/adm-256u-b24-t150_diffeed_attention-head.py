# ImageClassifier: DifFeed on the frozen ADM ImageNet-256 U-Net with the papers' attention head on block 24 at
# t = 150. The published default: the head's decoder block (24) is fed back to its mirror encoder block (14);
# only the feedback adapters and the head train.
_base_ = ['./adm-256u-b24-t150_attention-head.py']

model = dict(backbone=dict(type='DifFeedBackbone', feedback=None))
