"""Classification on frozen diffusion features: heads, configs, the feature cache and its tools."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdiff.feature_cache.writer import batch_by_batch, extract_to_cache
from mmdiff.feature_cache.cache_format import FeatureCache
from mmdiff.models.backbones import declared_out_channels
from mmdiff.feature_cache.extraction import build_model_and_dataset, extract_split, preprocessed_pixels
from mmdiff.apis.linear_probe_fit import fit_linear_probe
from mmdiff.datasets.class_subset import first_per_class
from tests.test_utils.tool_runs import ROOT, run_in_process

LINEAR_DEMO = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py'
CACHED_DEMO = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_cached_demo-shapes.py'
HEAD_DEMOS = [LINEAR_DEMO] + sorted((ROOT / 'configs/classification_heads').glob('*demo-shapes.py'))
REAL_CONFIGS = sorted(p for p in (ROOT / 'configs/linear_probe').glob('*.py') if 'adm-256u' in p.name) + sorted(
    p for p in (ROOT / 'configs/classification_heads').glob('*.py') if 'adm-256u' in p.name)


def demo_cfg(config: Path, root: Path) -> Config:
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': str(root),
        'val_dataloader.dataset.data_root': str(root),
        'test_dataloader.dataset.data_root': str(root)
    })
    return cfg


def demo_options(root: Path) -> list:
    return [
        f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ] + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'param_scheduler.0.end=1']


def run(tool: str, args: list):
    """``tools/<tool>`` with ``args``, in this process."""
    return run_in_process(ROOT / 'tools' / tool, args)


def top1(output: str) -> float:
    return float(re.findall(r'accuracy/top1: ([\d.]+)', output)[-1])


def assert_scored_every_val_image(output: str, num_images: int = 8) -> None:
    """The last top-1 accuracy is k / num_images for a whole k: every held-out image (4 classes x 2) was scored."""
    correct = top1(output) * num_images / 100
    assert abs(correct - round(correct)) < 1e-3 and 0 <= round(correct) <= num_images, top1(output)


def test_head_errors():
    from mmdiff.models.heads import AttentionHead, CNNHead, LinearProbeHead

    with pytest.raises(ValueError, match='num_classes=0 must be a positive integer'):
        LinearProbeHead(num_classes=0, in_channels=8)
    with pytest.raises(ValueError, match=r'pool_size must be a positive int or \(h, w\) pair, got 0'):
        LinearProbeHead(num_classes=2, in_channels=8, pool_size=0)
    # pooling must not blow a small map up
    with pytest.raises(ValueError, match=r'pool_size \(4, 4\) is larger than the \(2, 2\) feature map of backbone '
                       r'output -1; use a smaller pool_size'):
        LinearProbeHead(num_classes=2, in_channels=8, pool_size=4)((torch.rand(1, 8, 2, 2), ))
    with pytest.raises(ValueError, match='in_channels=8, but backbone output -1 has 6 channels'):
        LinearProbeHead(num_classes=2, in_channels=8)((torch.rand(1, 6, 4, 4), ))
    with pytest.raises(IndexError, match=r'in_index=2 is out of range for 1 backbone outputs; valid: -1..0'):
        LinearProbeHead(num_classes=2, in_channels=8, in_index=2)((torch.rand(1, 8, 4, 4), ))
    # 'stack' fusion keeps a timestep axis, which these heads cannot take
    with pytest.raises(ValueError, match=r"takes \(N, C, H, W\) feature maps, got \(1, 3, 8, 4, 4\) .*'concat'"):
        CNNHead(num_classes=2, in_channels=8, channels=(4, ))((torch.rand(1, 3, 8, 4, 4), ))
    with pytest.raises(ValueError, match='embed_dims=30 is not divisible by num_heads=4'):
        AttentionHead(num_classes=2, in_channels=8, embed_dims=30, num_heads=4)
    with pytest.raises(ValueError, match='channels is empty'):
        CNNHead(num_classes=2, in_channels=8, channels=())


@pytest.mark.parametrize('config', HEAD_DEMOS, ids=lambda path: path.name.split('_')[0])
@pytest.mark.slow
def test_each_head_trains_and_evaluates_through_the_train_tool(config, classification_shapes, tmp_path):
    result = run('train.py', [config, '--work-dir', tmp_path, '--cfg-options', *demo_options(classification_shapes)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored_every_val_image(result.stdout)
    assert (tmp_path / 'epoch_1.pth').is_file()


@pytest.mark.parametrize('config', REAL_CONFIGS, ids=lambda path: path.name)
def test_real_configs_run_a_train_step_with_the_tiny_unet(config):
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    from mmpretrain.structures import DataSample

    cfg = Config.fromfile(str(config))
    assert cfg.model.backbone.arch == 'adm-256u' and cfg.model.backbone.frozen

    def head_channels(backbone: dict):  # a fusion head reads every output, the others the last one
        channels = declared_out_channels(backbone)
        return tuple(channels) if cfg.model.head.type == 'mmdiff.DifFormerHead' else channels[-1]

    in_channels = cfg.model.head.in_channels  # literal in the config, equal to the backbone's declared channels
    assert (tuple(in_channels) if isinstance(in_channels, (list, tuple)) else in_channels) == head_channels(
        cfg.model.backbone)
    tiny = dict(cfg.model.backbone, arch='adm-tiny', init_cfg=None)
    cfg.merge_from_dict({
        'model.backbone.arch': 'adm-tiny',
        'model.backbone.init_cfg': None,
        'model.head.in_channels': head_channels(tiny)
    })
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    num_classes = cfg.model.head.num_classes
    data = dict(
        # 256 px, the U-Net's resolution: each tapped map has the size the config's pooling is written for
        inputs=[torch.randint(0, 256, (3, 256, 256), dtype=torch.uint8) for _ in range(2)],
        data_samples=[DataSample().set_gt_label(label) for label in (0, num_classes - 1)])
    head_before = [p.clone() for p in model.head.parameters()]
    log_vars = model.train_step(data, OptimWrapper(torch.optim.SGD(model.head.parameters(), lr=0.1)))
    assert math.isfinite(float(log_vars['loss']))
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model.head.parameters()))
    # the backbone is frozen; only DifFeed's feedback adapters learn
    assert all(p.grad is None for name, p in model.backbone.named_parameters() if not name.startswith('adapters.'))


def test_cache_round_trips_the_live_features_exactly(classification_shapes, tmp_path):
    from mmdiff.models.backbones import DiffusionUNetBackbone

    cfg = demo_cfg(LINEAR_DEMO, classification_shapes)
    # the U-Net's weights come from a checkpoint, so the extraction and the live model below share them
    backbone_cfg = {key: value for key, value in cfg.model.backbone.items() if key not in ('type', 'init_cfg')}
    torch.save({'state_dict': DiffusionUNetBackbone(**backbone_cfg).state_dict()}, tmp_path / 'unet.pth')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'unet.pth'))
    cache = extract_split(cfg, 'val', str(tmp_path / 'val'), shard_size=3, batch_size=2, show_progress=False)
    model, dataset, _ = build_model_and_dataset(cfg, 'val')
    from mmengine.dataset import pseudo_collate
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]), False)
        live = model.backbone(data['inputs'])[-1]
    labels = torch.cat([sample.gt_label for sample in data['data_samples']])
    assert len(cache) == len(dataset) == 8
    assert torch.allclose(torch.from_numpy(np.asarray(cache.level(-1))), live, atol=1e-5)
    assert torch.equal(torch.from_numpy(np.asarray(cache.labels)), labels)
    manifest = json.loads((tmp_path / 'val' / 'manifest.json').read_text())
    assert manifest['taps'] == ['up_blocks.1.attentions.1'] and manifest['timesteps'] == [150]
    assert manifest['noise_seed'] == 0 and manifest['dataset']['data_prefix'] == 'val'
    assert len(manifest['weights_sha256']) == 64
    # the dataset accepts the cache for this backbone, and refuses it once the checkpoint's weights change
    from mmdiff.feature_cache.dataset import CachedFeatureDataset
    assert len(CachedFeatureDataset(str(tmp_path / 'val'), cfg.model.backbone, cfg.val_dataloader.dataset)) == 8
    torch.save({'state_dict': DiffusionUNetBackbone(**backbone_cfg).state_dict()}, tmp_path / 'unet.pth')
    with pytest.raises(ValueError, match=r"the feature cache '.*val' is stale: \(cache, config\) differ in "
                       r"\{'weights_sha256': "):
        CachedFeatureDataset(str(tmp_path / 'val'), cfg.model.backbone, cfg.val_dataloader.dataset)
    with pytest.raises(IndexError, match=r"level 3 is not in the cache '.*val', which holds 1 levels \(taps "
                       r"\['up_blocks.1.attentions.1'\]\)"):
        cache.level(3)


def test_random_weight_extraction_is_the_same_model_for_every_split_and_call(classification_shapes, tmp_path):
    # a random-weight baseline is only meaningful when train and val features come from one model
    cfg = demo_cfg(LINEAR_DEMO, classification_shapes)
    first = extract_split(cfg, 'val', str(tmp_path / 'first'), show_progress=False)
    torch.rand(1000)  # whatever the process drew before
    second = extract_split(cfg, 'val', str(tmp_path / 'second'), show_progress=False)
    assert np.array_equal(np.asarray(first.level(-1)), np.asarray(second.level(-1)))
    assert first.manifest['init_seed'] == cfg.randomness.seed == 0


def test_interrupted_extraction_resumes_without_recomputing(tmp_path):
    features = torch.arange(10 * 2 * 3, dtype=torch.float32).view(10, 2, 3, 1)
    computed = []

    def batch_features(indices, fail_after=None):
        if fail_after is not None and len(computed) >= fail_after:
            raise KeyboardInterrupt('killed')
        computed.extend(indices)
        return [features[indices]], torch.tensor(indices)

    manifest = dict(backbone=dict(type='Fake'), dataset=dict(type='Fake'))
    with pytest.raises(KeyboardInterrupt):  # dies in the third shard, after shards 0 and 1 (4 samples each)
        extract_to_cache(batch_by_batch(lambda i: batch_features(i, fail_after=9)), 10, str(tmp_path / 'cache'),
                         manifest, shard_size=4, batch_size=2, show_progress=False)
    assert sorted(path.name for path in (tmp_path / 'cache' / 'shards_done').iterdir()) == ['0', '1']
    assert not (tmp_path / 'cache' / 'progress.json').exists()  # finalised only once every shard is written
    with pytest.raises(ValueError, match=r'is incomplete \(1 of 3 shards missing\); run '
                                         r'tools/feature_tools/extract_features.py'):
        FeatureCache(str(tmp_path / 'cache'))
    computed.clear()
    cache = extract_to_cache(batch_by_batch(batch_features), 10, str(tmp_path / 'cache'), manifest, shard_size=4,
                             batch_size=2, show_progress=False)
    assert computed == [8, 9]  # only the unfinished shard
    assert json.loads((tmp_path / 'cache' / 'progress.json').read_text()) == dict(done=[0, 1, 2])
    assert not (tmp_path / 'cache' / 'shards_done').exists()
    assert torch.equal(torch.from_numpy(np.asarray(cache.level(0))), features)
    # a folder holding other features is refused, never reused
    with pytest.raises(ValueError, match=r"holds a feature cache of other features; \(cache, asked\) differ in "
                       r"\{'backbone': \(\{'type': 'Fake'\}, \{'type': 'Other'\}\)\}"):
        extract_to_cache(batch_by_batch(batch_features), 10, str(tmp_path / 'cache'),
                         dict(manifest, backbone=dict(type='Other')), shard_size=4, batch_size=2, show_progress=False)


@pytest.mark.slow
def test_cached_config_trains_and_refuses_a_stale_cache(classification_shapes, tmp_path):
    cfg = demo_cfg(LINEAR_DEMO, classification_shapes)
    for split in ('train', 'val'):
        extract_split(cfg, split, str(tmp_path / split), show_progress=False)
    options = [f'{loader}.dataset.cache_dir={tmp_path / split}' for loader, split in (
        ('train_dataloader', 'train'), ('val_dataloader', 'val'), ('test_dataloader', 'val'))]
    options += [f'{loader}.dataset.expected_dataset.data_root={classification_shapes}'
                for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'param_scheduler.0.end=1']
    result = run('train.py', [CACHED_DEMO, '--work-dir', tmp_path / 'work', '--cfg-options', *options])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored_every_val_image(result.stdout)
    # the same cache for a backbone at another timestep is stale
    stale = run('train.py', [CACHED_DEMO, '--work-dir', tmp_path / 'stale', '--cfg-options', *options,
                             'train_dataloader.dataset.expected_backbone.timesteps=[90]'])
    assert stale.returncode != 0
    assert re.search(r"the feature cache '.*train' is stale: \(cache, config\) differ in \{'backbone': ",
                     stale.stderr)


@pytest.mark.slow
def test_sweep_writes_one_cell_per_timestep_and_block(classification_shapes, tmp_path):
    result = run('feature_tools/sweep_timesteps_blocks.py', [
        LINEAR_DEMO, '--timesteps', 10, 300, '--blocks', 19, 24, 'up_blocks.3', '--work-dir', tmp_path, '--epochs', 3,
        '--pixel-baseline', '--labels-per-class', 1, '--cfg-options', *demo_options(classification_shapes)])
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = json.loads((tmp_path / 'sweep.json').read_text())
    assert sweep['taps'] == ['mid_block', 'up_blocks.1.attentions.1', 'up_blocks.3']
    assert np.asarray(sweep['top1']).shape == (3, 2)
    # the raw-pixel baseline is the same probe (3 epochs, seed 0) fitted on the same preprocessed pixels here
    (train_x, train_y), (val_x, val_y) = (preprocessed_pixels(demo_cfg(LINEAR_DEMO, classification_shapes), split)
                                          for split in ('train', 'val'))
    assert sweep['pixel_top1'] == pytest.approx(fit_linear_probe(train_x, train_y, val_x, val_y, epochs=3)[0])
    # the few-label row fits the same probes on the first train image of each class only
    first = first_per_class(train_y.numpy(), 1)
    assert len(first) == 4 and sorted(train_y[first].tolist()) == [0, 1, 2, 3]
    few = sweep['few_labels']['1']
    assert few['pixel_top1'] == pytest.approx(fit_linear_probe(train_x[first], train_y[first], val_x, val_y,
                                                               epochs=3)[0])
    assert np.asarray(few['top1']).shape == (3, 2) and few['best']['top1'] == np.asarray(few['top1']).max()
    assert sweep['best']['top1'] == np.asarray(sweep['top1']).max()
    rows = (tmp_path / 'sweep.csv').read_text().splitlines()
    assert rows[0] == 'block,timestep,top1'
    cells = [row.split(',') for row in rows[1:]]
    assert [(block, t) for block, t, _ in cells] == [(b, t) for b in ('19', '24', 'up_blocks.3')
                                                     for t in ('10', '300')]
    # the CSV is the JSON's table, each cell a top-1 over the 8 held-out images: a multiple of 12.5 %
    assert [float(top1) for _, _, top1 in cells] == np.asarray(sweep['top1']).ravel().tolist()
    assert all(float(top1) % 12.5 == 0 for _, _, top1 in cells)
    assert (tmp_path / 'heatmap.png').stat().st_size > 0
    assert '| block \\ t | 10 | 300 |' in (tmp_path / 'sweep.md').read_text()
    assert re.search(r'best cell: block \S+ at t=\d+, top-1 [\d.]+%', result.stdout)
    assert 'raw pixels (same probe, unpooled): ' in (tmp_path / 'sweep.md').read_text()
    # two sweeps of the same grid compare; the summary names each run's best cell and the pixel baseline
    summary = run('feature_tools/compare_sweeps.py',
                  [tmp_path, tmp_path, '--names', 'a', 'b', '--out', tmp_path / 's.md'])
    assert summary.returncode == 0, summary.stderr[-3000:]
    best = sweep['best']
    assert f"| b | block {best['block']}, t={best['timestep']} | {best['top1']:.2f} | +0.00 |" in summary.stdout
    assert f"| raw pixels | - | {sweep['pixel_top1']:.2f} |" in (tmp_path / 's.md').read_text()
    assert f"| a | {few['best']['top1']:.2f} (block {few['best']['block']}, t={few['best']['timestep']}) |" in (
        summary.stdout)
    assert f"| raw pixels | {few['pixel_top1']:.2f} |" in summary.stdout
    # a grid naming a block the U-Net does not have fails before any extraction
    unknown = run('feature_tools/sweep_timesteps_blocks.py', [
        LINEAR_DEMO, '--timesteps', 10, '--blocks', 40, '--work-dir', tmp_path / 'unknown', '--cfg-options',
        *demo_options(classification_shapes)])
    assert unknown.returncode != 0
    assert 'diffssl block 40 does not exist in this U-Net; valid blocks are 1..37' in unknown.stderr
    assert not (tmp_path / 'unknown' / 'cache').exists()


def test_visualiser_writes_one_image_per_input_with_a_panel_per_tap(classification_shapes, tmp_path):
    import cv2

    images = sorted((classification_shapes / 'val' / 'circle').glob('*.png'))
    result = run('feature_tools/visualize_features.py', [
        LINEAR_DEMO, *images, '--out', tmp_path, '--size', 64, '--cfg-options', 'model.backbone.out_blocks=[5,19,24]',
        'model.backbone.timesteps=[10,150]'])
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(tmp_path.glob('*.png'))
    assert [path.name for path in written] == [path.name for path in images]
    # one row per tap (3), one column for the input plus one per timestep (2)
    assert cv2.imread(str(written[0])).shape == (3 * 64, 3 * 64, 3)
