"""Synthetic scenes of coloured shapes, written as a COCO-format instance segmentation dataset.

Each image holds a few shapes (circles, squares, triangles, stars) of varied size, colour and rotation on a
textured background; later shapes occlude earlier ones. Annotations describe what is visible: each instance's
mask is its visible pixels, written as polygons (its outer contours), and its box encloses them. Everything
follows from the seed, so a dataset can be regenerated bit for bit. Needs numpy, OpenCV and nothing from mmdet.

:func:`make_shapes_dataset` writes the detection dataset, :func:`make_shapes_classification_dataset` a
classification one (one shape per image, the class is its kind) in mmpretrain's ``CustomDataset`` folder layout,
and :func:`make_shapes_segmentation_dataset` a semantic segmentation one in the ADE20K folder layout.

Detection layout written under ``root``::

    images/train/000000.png ...
    images/val/000000.png ...
    annotations/instances_train.json
    annotations/instances_val.json
"""
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from mmdiff.utils.choices import check_choice

SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star')
MIN_VISIBLE_FRACTION = 0.3  # instances occluded below this fraction of their area are painted but not annotated


def _outline(shape: str, center: Tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """Polygon (K, 2) of a shape inscribed in a circle of ``radius``, rotated by ``angle`` radians."""
    check_choice('shape', shape, SHAPE_CLASSES)
    if shape == 'circle':
        angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        radii = np.full_like(angles, radius)
    elif shape == 'square':
        angles = angle + np.arange(4) * math.pi / 2 + math.pi / 4
        radii = np.full_like(angles, radius)
    elif shape == 'triangle':
        angles = angle + np.arange(3) * 2 * math.pi / 3
        radii = np.full_like(angles, radius)
    else:  # 'star'
        angles = angle + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    return np.stack([center[0] + radii * np.cos(angles), center[1] + radii * np.sin(angles)], axis=1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth two-colour gradient with grain, (size, size, 3) uint8."""
    start, end = rng.uniform(0, 255, (2, 3))
    direction = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / size
    ramp = (np.cos(direction) * xs + np.sin(direction) * ys)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    image = start + ramp[..., None] * (end - start) + rng.normal(0, 12, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator,
                 image_size: int,
                 max_objects: int,
                 label: Optional[int] = None) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Draw one scene.

    Args:
        rng (np.random.Generator): Source of every random choice.
        image_size (int): Side of the square image in pixels.
        max_objects (int): Shapes per image are drawn uniformly from 1..max_objects.
        label (int, optional): Class of every shape; None draws each one's class at random.

    Returns:
        tuple: The image ``(image_size, image_size, 3)`` uint8 (BGR), and per visible instance its class index
        and its boolean visible mask ``(image_size, image_size)``.
    """
    image = _background(rng, image_size)
    owner = np.full((image_size, image_size), -1, dtype=np.int32)  # which instance each pixel shows
    labels, areas = [], []
    for index in range(int(rng.integers(1, max_objects + 1))):
        shape_label = int(rng.integers(len(SHAPE_CLASSES))) if label is None else label
        radius = rng.uniform(0.08, 0.22) * image_size
        center = rng.uniform(radius * 0.6, image_size - radius * 0.6, 2)
        polygon = np.round(_outline(SHAPE_CLASSES[shape_label], center, radius, rng.uniform(0, 2 * math.pi)))
        mask = np.zeros((image_size, image_size), dtype=np.uint8)
        cv2.fillPoly(mask, [polygon.astype(np.int32)], 1)
        colour = rng.uniform(0, 255, 3)
        image[mask == 1] = np.clip(colour + rng.normal(0, 6, (int(mask.sum()), 3)), 0, 255).astype(np.uint8)
        owner[mask == 1] = index
        labels.append(shape_label)
        areas.append(int(mask.sum()))
    instances = []
    for index, (shape_label, area) in enumerate(zip(labels, areas)):
        visible = owner == index
        if area > 0 and visible.sum() >= MIN_VISIBLE_FRACTION * area:
            instances.append((shape_label, visible))
    return image, instances


def _annotation(mask: np.ndarray, label: int, image_id: int, annotation_id: int) -> Dict:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = [contour.flatten().astype(float).tolist() for contour in contours if len(contour) >= 3]
    ys, xs = np.nonzero(mask)
    x0, y0 = float(xs.min()), float(ys.min())
    return dict(
        id=annotation_id,
        image_id=image_id,
        category_id=label + 1,
        segmentation=polygons,
        area=float(mask.sum()),
        bbox=[x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0],
        iscrowd=0)


def write_split(root: Path, split: str, num_images: int, image_size: int, max_objects: int, seed: int) -> Path:
    """Render ``num_images`` scenes into ``root/images/<split>/`` and their COCO file; returns the file's path."""
    rng = np.random.default_rng(seed)
    image_dir = root / 'images' / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id in range(num_images):
        image, instances = render_scene(rng, image_size, max_objects)
        file_name = f'{image_id:06d}.png'
        cv2.imwrite(str(image_dir / file_name), image)
        images.append(dict(id=image_id, file_name=file_name, height=image_size, width=image_size))
        for label, mask in instances:
            annotations.append(_annotation(mask, label, image_id, len(annotations) + 1))
    categories = [dict(id=index + 1, name=name) for index, name in enumerate(SHAPE_CLASSES)]
    ann_file = root / 'annotations' / f'instances_{split}.json'
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    ann_file.write_text(json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return ann_file


def make_shapes_dataset(root: str,
                        num_train: int = 600,
                        num_val: int = 150,
                        image_size: int = 128,
                        max_objects: int = 4,
                        seed: int = 0) -> Dict[str, Path]:
    """Write the train and val splits of the synthetic shapes dataset under ``root``.

    Args:
        root (str): Output folder.
        num_train (int): Training images. Defaults to 600.
        num_val (int): Held-out images. Defaults to 150.
        image_size (int): Image side in pixels. Defaults to 128.
        max_objects (int): Most shapes per image. Defaults to 4.
        seed (int): The train split uses ``seed``, the val split ``seed + 1``. Defaults to 0.

    Returns:
        dict: ``{'train': path, 'val': path}`` of the annotation files.
    """
    for name, value in dict(num_train=num_train, num_val=num_val, image_size=image_size,
                            max_objects=max_objects).items():
        if value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}')
    root = Path(root)
    return {
        split: write_split(root, split, count, image_size, max_objects, seed + offset)
        for offset, (split, count) in enumerate((('train', num_train), ('val', num_val)))
    }


def make_shapes_classification_dataset(root: str,
                                       num_train_per_class: int = 40,
                                       num_val_per_class: int = 20,
                                       image_size: int = 64,
                                       seed: int = 0) -> Dict[str, Path]:
    """Write a labelled image set, one shape per image, as ``root/{train,val}/<class>/<index>.png``.

    Args:
        root (str): Output folder.
        num_train_per_class (int): Training images per class. Defaults to 40.
        num_val_per_class (int): Held-out images per class. Defaults to 20.
        image_size (int): Image side in pixels. Defaults to 64.
        seed (int): The train split uses ``seed``, the val split ``seed + 1``. Defaults to 0.

    Returns:
        dict: ``{'train': folder, 'val': folder}``.
    """
    folders = {}
    for offset, (split, count) in enumerate((('train', num_train_per_class), ('val', num_val_per_class))):
        if count < 1:
            raise ValueError(f'num_{split}_per_class must be >= 1, got {count}')
        rng = np.random.default_rng(seed + offset)
        folders[split] = Path(root) / split
        for label, name in enumerate(SHAPE_CLASSES):
            (folders[split] / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image, _ = render_scene(rng, image_size, max_objects=1, label=label)
                cv2.imwrite(str(folders[split] / name / f'{index:06d}.png'), image)
    return folders


def make_shapes_segmentation_dataset(root: str,
                                     num_train: int = 300,
                                     num_val: int = 100,
                                     image_size: int = 128,
                                     max_objects: int = 4,
                                     seed: int = 0) -> Dict[str, Path]:
    """Write the scenes of :func:`make_shapes_dataset` as semantic segmentation data in the ADE20K layout.

    ``images/{training,validation}/<index>.jpg`` and ``annotations/{training,validation}/<index>.png``, whose
    pixels hold 0 for the background ("other", ignored with ``reduce_zero_label=True`` as ADE20K does) and
    ``1 + class index`` for each visible shape.

    Args:
        root (str): Output folder.
        num_train (int): Training images. Defaults to 300.
        num_val (int): Held-out images. Defaults to 100.
        image_size (int): Image side in pixels. Defaults to 128.
        max_objects (int): Most shapes per image. Defaults to 4.
        seed (int): The training split uses ``seed``, the validation split ``seed + 1``. Defaults to 0.

    Returns:
        dict: ``{'training': annotation folder, 'validation': annotation folder}``.
    """
    folders = {}
    for offset, (split, count) in enumerate((('training', num_train), ('validation', num_val))):
        if count < 1:
            raise ValueError(f'the {split} split needs at least one image, got {count}')
        rng = np.random.default_rng(seed + offset)
        image_dir, label_dir = Path(root) / 'images' / split, Path(root) / 'annotations' / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, instances = render_scene(rng, image_size, max_objects)
            label_map = np.zeros((image_size, image_size), dtype=np.uint8)
            for label, mask in instances:
                label_map[mask] = label + 1
            cv2.imwrite(str(image_dir / f'{index:06d}.jpg'), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(label_dir / f'{index:06d}.png'), label_map)
        folders[split] = label_dir
    return folders
