"""model-index.yml and configs/*/metafile.yml: OpenMMLab's model-zoo schema, one entry for every shipped config."""
from pathlib import Path

import yaml

from tests.test_utils.tool_runs import ROOT

MODEL_KEYS = {'Name', 'In Collection', 'Config', 'Metadata', 'Results', 'Weights'}
REQUIRED_MODEL_KEYS = {'Name', 'In Collection', 'Config', 'Metadata', 'Weights'}


def metafiles() -> list:
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    assert set(index) == {'Import'}
    return [ROOT / path for path in index['Import']]


def test_every_metafile_is_imported_and_every_config_listed_once():
    imported = metafiles()
    assert sorted(imported) == sorted((ROOT / 'configs').glob('*/metafile.yml'))
    listed = [model['Config'] for path in imported for model in yaml.safe_load(path.read_text())['Models']]
    shipped = sorted(str(path.relative_to(ROOT)) for path in (ROOT / 'configs').rglob('*.py')
                     if '_base_' not in path.parts)
    assert sorted(listed) == shipped


def test_every_entry_follows_the_schema_and_names_an_existing_config():
    names = []
    for path in metafiles():
        metafile = yaml.safe_load(path.read_text())
        assert set(metafile) == {'Collections', 'Models'}
        collections = {collection['Name'] for collection in metafile['Collections']}
        for collection in metafile['Collections']:
            assert collection['Metadata']['Task'] and collection['Paper']['URL'].startswith('https://')
            assert (ROOT / collection['README']).is_file()
        for model in metafile['Models']:
            assert REQUIRED_MODEL_KEYS <= set(model) <= MODEL_KEYS, model
            assert model['In Collection'] in collections
            config = ROOT / model['Config']
            assert config.is_file() and model['Name'] == config.stem
            assert model['Weights'] is None  # no weights are released
            metadata = model['Metadata']
            assert metadata['Training Data'] and metadata['Architecture']
            assert 'Epochs' in metadata or 'Iterations' in metadata
            for result in model.get('Results', []):
                assert set(result) == {'Task', 'Dataset', 'Metrics'} and result['Metrics']
                assert all(isinstance(value, float) for value in result['Metrics'].values())
            names.append(model['Name'])
    assert len(names) == len(set(names))


def test_the_measured_results_are_the_documented_ones():
    """Results only where mmdiff measured them, with the numbers its docs report."""
    results = {model['Name']: model['Results'] for path in metafiles()
               for model in yaml.safe_load(path.read_text())['Models'] if 'Results' in model}
    assert set(results) == {'mask-rcnn_adm-tiny-t10_fpn_demo-shapes', 'upernet_adm-tiny-t10_demo-shapes-128x128'}
    detection, segmentation = (ROOT / 'docs/detection.md').read_text(), (ROOT / 'docs/segmentation.md').read_text()
    box, mask = (results['mask-rcnn_adm-tiny-t10_fpn_demo-shapes'][0]['Metrics'][key] for key in ('box AP', 'mask AP'))
    assert f'{box / 100:.3f} / ' in detection and f'{mask / 100:.3f} / ' in detection
    miou = results['upernet_adm-tiny-t10_demo-shapes-128x128'][0]['Metrics']['mIoU']
    assert f'sliding window (96x96 crops, stride 64) | {miou:.2f}' in segmentation
