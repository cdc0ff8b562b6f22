"""guided-diffusion's resize-and-crop (``center_crop_arr`` / ``random_crop_arr``), the diffssl papers' pipeline."""
import math
import random

import numpy as np
from PIL import Image

from mmdiff.registry import TRANSFORMS, register_module


@register_module(TRANSFORMS)
class ADMResizeCrop:
    """Resize the short side, then crop a square, exactly as guided-diffusion's ``image_datasets.py`` does.

    The short side goes to ``image_size`` (evaluation, center crop) or to a random integer in
    ``[ceil(image_size / max_crop_frac), ceil(image_size / min_crop_frac)]`` (training, random crop; 256-320 for
    256 px): the image is halved with PIL's BOX filter while its short side is at least twice the target, then
    resized with BICUBIC to the target, and a ``image_size`` square is cropped. The random draws use Python's
    ``random``, as the reference does (mmengine seeds it per dataloader worker). Works on the ``'img'`` array of
    any channel order.

    Args:
        image_size (int): Side of the square crop. Defaults to 256.
        random_crop (bool): ``random_crop_arr`` (True) or ``center_crop_arr`` (False). Defaults to False.
        min_crop_frac (float): Smallest crop / short side fraction of the random crop. Defaults to 0.8.
        max_crop_frac (float): Largest crop / short side fraction of the random crop. Defaults to 1.0.

    Example:
        >>> import numpy as np
        >>> crop = ADMResizeCrop(image_size=32, random_crop=True)
        >>> crop(dict(img=np.zeros((90, 60, 3), np.uint8)))['img'].shape
        (32, 32, 3)
    """

    def __init__(self, image_size: int = 256, random_crop: bool = False, min_crop_frac: float = 0.8,
                 max_crop_frac: float = 1.0) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f'image_size must be a positive integer, got {image_size!r}')
        if not 0 < min_crop_frac <= max_crop_frac <= 1:
            raise ValueError(f'need 0 < min_crop_frac <= max_crop_frac <= 1, got min_crop_frac={min_crop_frac}, '
                             f'max_crop_frac={max_crop_frac}')
        self.image_size = image_size
        self.random_crop = random_crop
        self.min_crop_frac = min_crop_frac
        self.max_crop_frac = max_crop_frac

    def _short_side(self) -> int:
        if not self.random_crop:
            return self.image_size
        return random.randrange(math.ceil(self.image_size / self.max_crop_frac),
                                math.ceil(self.image_size / self.min_crop_frac) + 1)

    def __call__(self, results: dict) -> dict:
        """Resize and crop ``results['img']`` ``(H, W, C)`` uint8 to ``(image_size, image_size, C)``."""
        short_side = self._short_side()
        image = Image.fromarray(results['img'])
        while min(*image.size) >= 2 * short_side:
            image = image.resize(tuple(side // 2 for side in image.size), resample=Image.BOX)
        scale = short_side / min(*image.size)
        image = image.resize(tuple(round(side * scale) for side in image.size), resample=Image.BICUBIC)
        array = np.array(image)
        height, width = array.shape[:2]
        if self.random_crop:
            top, left = random.randrange(height - self.image_size + 1), random.randrange(width - self.image_size + 1)
        else:
            top, left = (height - self.image_size) // 2, (width - self.image_size) // 2
        results['img'] = array[top:top + self.image_size, left:left + self.image_size]
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(image_size={self.image_size}, random_crop={self.random_crop}, '
                f'min_crop_frac={self.min_crop_frac}, max_crop_frac={self.max_crop_frac})')
