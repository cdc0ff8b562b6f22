"""Segmentation masks must hold the config's classes: a label outside them is named with its file.

mmseg reads a mask as it is stored (``imdecode(flag='unchanged')``), so a 16-bit mask, or labels numbered for
another class list, reach the metric as pixels of no class: training runs, and the evaluation reports ``aAcc nan``
and ``mIoU 0`` with exit code 0. :func:`check_segmentation_labels` decodes every mask of a split before that.
"""
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

IGNORE_INDEX = 255  # mmseg's ignore label


def valid_labels(num_classes: int, reduce_zero_label: bool) -> np.ndarray:
    """The values a mask may hold: the classes (1..N with ``reduce_zero_label``, whose 0 becomes the ignore label;
    else 0..N-1) and the ignore label."""
    classes = np.arange(1, num_classes + 1) if reduce_zero_label else np.arange(num_classes)
    return np.union1d(classes, [0, IGNORE_INDEX] if reduce_zero_label else [IGNORE_INDEX])


def _foreign_labels(path: str, valid: np.ndarray) -> Tuple[str, Optional[np.ndarray], Optional[np.dtype]]:
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        return path, None, None
    values = np.unique(mask)
    return path, values[~np.isin(values, valid)], mask.dtype


def check_segmentation_labels(mask_folder: str, suffix: str, classes: Sequence[str], reduce_zero_label: bool,
                              split: str, workers: int = 8) -> None:
    """Refuse masks with values outside the classes, naming the first such file and its values.

    Args:
        mask_folder (str): The split's mask folder (``data_root`` + ``data_prefix.seg_map_path``).
        suffix (str): The masks' file suffix (``seg_map_suffix``).
        classes (Sequence[str]): The dataset's classes.
        reduce_zero_label (bool): Whether 0 is the ignored background and the classes are 1..N.
        split (str): Which dataloader, for the message.
        workers (int): Threads decoding the masks (OpenCV releases the GIL). Defaults to 8.

    Raises:
        ValueError: For an unreadable mask or labels outside the classes.
    """
    paths = sorted(osp.join(parent, name) for parent, _, names in os.walk(mask_folder) for name in names
                   if name.endswith(suffix))
    valid = valid_labels(len(classes), reduce_zero_label)
    with ThreadPoolExecutor(workers) as pool:
        for path, foreign, dtype in pool.map(lambda path: _foreign_labels(path, valid), paths):
            if foreign is None:
                raise ValueError(f'{split}: the mask {path!r} cannot be read as an image')
            if foreign.size:
                shown = foreign[:10].tolist()
                raise ValueError(
                    f'{split}: the mask {path!r} ({dtype}) holds labels {shown}{" ..." if foreign.size > 10 else ""} '
                    f'outside the {len(classes)} classes (valid: {_ranges(valid)}, reduce_zero_label='
                    f'{reduce_zero_label}); they would be scored as no class (aAcc nan, mIoU 0). Convert the masks to '
                    f'8-bit labels of the config\'s classes, or set metainfo.classes to match them')


def _ranges(values: np.ndarray) -> str:
    runs, start = [], values[0]
    for previous, current in zip(values, values[1:]):
        if current != previous + 1:
            runs.append((start, previous))
            start = current
    runs.append((start, values[-1]))
    return ', '.join(f'{a}' if a == b else f'{a}-{b}' for a, b in runs)
