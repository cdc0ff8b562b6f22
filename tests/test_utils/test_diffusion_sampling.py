"""Sampling a grid: every image has its own noise, so a grid splits across processes and stays the same."""
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from mmdiff.models import DiffusionPretrainer
from mmdiff.utils.diffusion_sampling import sample_images, sample_images_across_ranks

TINY = dict(sample_size=8, block_out_channels=(8, 16), layers_per_block=1, down_block_types=('DownBlock2D', ) * 2,
            up_block_types=('UpBlock2D', ) * 2, norm_num_groups=4, num_class_embeds=3)


def tiny_pretrainer() -> DiffusionPretrainer:
    torch.manual_seed(0)
    return DiffusionPretrainer(arch=TINY)


@pytest.mark.parametrize('sampler', ['ddim', 'ddpm'])
def test_an_image_is_the_same_whichever_images_are_drawn_with_it(sampler):
    model = tiny_pretrainer()
    grid = sample_images(model.unet, model.noise_scheduler, 5, sampler, 3, seed=4)
    some = sample_images(model.unet, model.noise_scheduler, 5, sampler, 3, seed=4, image_indices=[3, 1])
    assert torch.allclose(some, grid[[3, 1]], atol=1e-5)
    assert not torch.allclose(grid[1], grid[3], atol=1e-2)  # different noise (and classes) per image
    other_seed = sample_images(model.unet, model.noise_scheduler, 5, sampler, 3, seed=5, image_indices=[1])
    assert not torch.allclose(other_seed, grid[[1]], atol=1e-2)
    with pytest.raises(ValueError, match=r'image_indices must lie in \[0, 5\) \(num_images=5\), got \[5\]'):
        sample_images(model.unet, model.noise_scheduler, 5, sampler, 3, image_indices=[5])


def _draw_on_rank(rank: int, world_size: int, store: str, out: str) -> None:
    torch_dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=world_size)
    try:
        model = tiny_pretrainer()
        torch.save(sample_images_across_ranks(model.unet, model.noise_scheduler, 5, 'ddpm', 3, seed=2),
                   f'{out}.{rank}')
    finally:
        torch_dist.destroy_process_group()


def test_two_processes_draw_the_grid_of_one(tmp_path):
    mp.spawn(_draw_on_rank, args=(2, str(tmp_path / 'store'), str(tmp_path / 'grid')), nprocs=2)
    model = tiny_pretrainer()
    one_process = sample_images(model.unet, model.noise_scheduler, 5, 'ddpm', 3, seed=2)
    for rank in (0, 1):  # every rank gets the whole grid
        shared = torch.load(tmp_path / f'grid.{rank}', weights_only=True)
        assert shared.shape == (5, 3, 8, 8)
        assert torch.allclose(shared, one_process, atol=1e-5)
