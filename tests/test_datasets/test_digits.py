"""The bundled handwritten digits: documented split sizes, labels and images, and the seeded split."""
import numpy as np
import pytest

from mmdiff.datasets.digits import DIGIT_CLASSES, NUM_DIGITS, DigitsDataset


def test_default_split_sizes_labels_and_images():
    train, test = (DigitsDataset(split, pipeline=[]) for split in ('train', 'test'))
    assert (len(train), len(test)) == (1347, 450)
    assert train.metainfo['classes'] == DIGIT_CLASSES == tuple('0123456789')
    train_ids = {sample['scan_index'] for sample in train}
    test_ids = {sample['scan_index'] for sample in test}
    assert not train_ids & test_ids and train_ids | test_ids == set(range(NUM_DIGITS))
    # stratified: every class in both splits, in proportion (sklearn's 174-183 scans per class)
    for labels, fraction in ((train.get_gt_labels(), 0.75), (test.get_gt_labels(), 0.25)):
        counts = np.bincount(labels, minlength=10)
        assert counts.sum() == len(labels) and np.all(np.abs(counts - fraction * 180) <= 0.25 * 10 + 2)
    sample = test[0]
    assert sample['img'].shape == (16, 16, 3) and sample['img'].dtype == np.uint8
    assert np.array_equal(sample['img'][..., 0], sample['img'][..., 2])  # grey in every channel
    # the stored label is the scan's label
    from sklearn.datasets import load_digits
    assert sample['gt_label'] == load_digits().target[sample['scan_index']]


def test_split_follows_the_seed_only():
    first, again = DigitsDataset('test', pipeline=[]), DigitsDataset('test', pipeline=[])
    other = DigitsDataset('test', split_seed=1, pipeline=[])
    ids = [[sample['scan_index'] for sample in dataset] for dataset in (first, again, other)]
    assert ids[0] == ids[1] and ids[0] != ids[2]
    assert DigitsDataset('train', image_size=32, pipeline=[])[0]['img'].shape == (32, 32, 3)


def test_labels_per_class_keeps_the_first_train_images_of_each_class():
    whole = DigitsDataset('train', pipeline=[])
    few = DigitsDataset('train', labels_per_class=10, pipeline=[])
    assert len(few) == 100 and np.array_equal(np.bincount(few.get_gt_labels()), [10] * 10)
    kept = [sample['scan_index'] for sample in few]
    assert kept == sorted(kept)
    for digit in range(10):
        of_digit = [sample['scan_index'] for sample in whole if sample['gt_label'] == digit]
        assert [index for index in kept if index in of_digit] == of_digit[:10]


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match=r"split='val' is not supported; choose one of \['train', 'test'\]"):
        DigitsDataset('val')
    with pytest.raises(ValueError, match=r'image_size=12 must be a positive multiple of 8'):
        DigitsDataset('train', image_size=12)
    with pytest.raises(ValueError, match=r'test_fraction=1.5 must lie in \(0, 1\)'):
        DigitsDataset('train', test_fraction=1.5)
    with pytest.raises(ValueError, match=r"labels_per_class=10 subsamples the train split, but split='test'"):
        DigitsDataset('test', labels_per_class=10)
    with pytest.raises(ValueError, match=r'labels_per_class=0 must be a positive integer or None'):
        DigitsDataset('train', labels_per_class=0)
