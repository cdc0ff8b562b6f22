"""Where a backbone's parts come from: presets, dicts and local diffusers folders, resolved without building.

A ``model_dir`` is a model folder (``config.json`` + weights) or a pipeline folder (the model's subfolder,
``scheduler/`` and, for latent diffusion, ``vae/``); its configuration files are read with diffusers'
``load_config(local_files_only=True)`` and its weights only when the part is built (``from_pretrained``).
"""
import json
import os
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Tuple, Union

from diffusers import DDIMScheduler, DDPMScheduler, FlowMatchEulerDiscreteScheduler, SchedulerMixin, UNet2DModel
from torch import nn

from mmdiff.diffusers_compat import check_diffusers_version
from mmdiff.utils.choices import check_choice
from mmdiff.utils.model_check import constructor_defaults
from .family import ModelSource
from .vae_encoder import VAE_PRESETS, VAEEncoder, full_vae_config, vae_latent_stride

SCHEDULERS = {'DDPMScheduler': DDPMScheduler, 'DDIMScheduler': DDIMScheduler,
              'FlowMatchEulerDiscreteScheduler': FlowMatchEulerDiscreteScheduler}
# a folder's scheduler of another class noises as a DDPM with its betas, unless it is a flow-matching one
FLOW_MATCHING_SCHEDULERS = ('FlowMatchEulerDiscreteScheduler', )
DEFAULT_SCHEDULER = dict(type='DDPMScheduler', num_train_timesteps=1000, beta_schedule='linear')


def resolve_preset(argument: str, value: Union[str, dict, None], presets: dict, described: str) -> Optional[dict]:
    """``value`` as keyword arguments: a preset name is looked up in ``presets``; a dict or None is returned as is.

    Args:
        argument (str): The argument's name, for the error messages.
        value (str | dict | None): A preset name, a dict of keyword arguments or None.
        presets (dict): Preset name -> keyword arguments.
        described (str): What the dict's keys are the arguments of, e.g. ``'U-Net'``.
    """
    if isinstance(value, str):
        check_choice(argument, value, presets)
        return presets[value]
    if isinstance(value, dict) or value is None:
        return value
    raise TypeError(f'{argument} must be a preset name {list(presets)}, a dict of {described} arguments or None, '
                    f'got {type(value).__name__}')


def read_diffusers_config(folder: str, kind: type = UNet2DModel) -> Tuple[str, dict]:
    """A diffusers folder's configuration, read by diffusers' ``load_config(local_files_only=True)``: the class
    name and the constructor arguments.

    Args:
        folder (str): The folder.
        kind (type): A diffusers model class (any: they read ``config.json``) or scheduler class (any: they read
            ``scheduler_config.json``). Defaults to ``UNet2DModel``.
    """
    config = kind.load_config(folder, local_files_only=True)
    return config.get('_class_name'), {key: value for key, value in config.items() if not key.startswith('_')}


def pipeline_subfolder(model_dir: Optional[str], name: str, config_file: str) -> Optional[str]:
    """``model_dir``'s subfolder ``name`` (``'vae'``, ``'scheduler'``) when it is a pipeline folder with one that
    holds ``config_file``."""
    if model_dir is None or not os.path.isfile(os.path.join(model_dir, name, config_file)):
        return None
    return os.path.join(model_dir, name)


def check_folder_matches(argument: str, given: Union[str, dict], wanted: Mapping, folder_config: Mapping,
                         folder: str) -> None:
    """Fail when the preset or dict ``argument=given`` differs from the configuration in ``folder``."""
    differing = {key: (value, folder_config.get(key)) for key, value in wanted.items()
                 if not key.startswith('_') and json.dumps(folder_config.get(key)) != json.dumps(value)}
    if differing:
        given_text = repr(given) if isinstance(given, str) else 'the given dict'
        raise ValueError(f'the model in {folder!r} does not match {argument}={given_text}: (given, folder) '
                         f'differ in {differing}; set {argument}=None to use the folder\'s configuration')


@dataclass(frozen=True)
class VAESource:
    """The autoencoder (``AutoencoderKL``, ``AutoencoderDC``) whose encoder makes a latent model's inputs.

    Args:
        config (Mapping): Its keyword arguments, defaults included.
        folder (str, optional): Its local folder (weights); None for random weights.
        latents (str): ``'scaled'`` or ``'unscaled'`` (:data:`~mmdiff.models.backbones.core.vae_encoder.VAE_LATENTS`).
    """
    config: Mapping
    folder: Optional[str]
    latents: str

    @property
    def latent_stride(self) -> int:
        """Image pixels per latent pixel."""
        return vae_latent_stride(self.config)

    def build(self) -> VAEEncoder:
        """The encoder: the folder's weights (``from_pretrained(local_files_only=True)``), else random ones."""
        return VAEEncoder(self.config, self.latents) if self.folder is None else VAEEncoder.from_folder(
            self.folder, self.latents)


def resolve_vae(vae: Union[str, dict, None], latents: str, model_dir: Optional[str]) -> Optional[VAESource]:
    """``model_dir``'s ``vae/`` (checked against ``vae``), else the preset or dict ``vae``, else None."""
    given, config = vae, resolve_preset('vae', vae, VAE_PRESETS, 'AutoencoderKL (or, with type, AutoencoderDC)')
    folder = pipeline_subfolder(model_dir, 'vae', 'config.json')
    if folder is not None:
        class_name, folder_config = read_diffusers_config(folder)
        folder_config = full_vae_config(dict(folder_config, type=class_name or 'AutoencoderKL'))
        if config is not None:
            check_folder_matches('vae', given, full_vae_config(config), folder_config, folder)
        config = folder_config
    elif config is None:
        return None
    return VAESource(full_vae_config(config), folder, latents)


@dataclass(frozen=True)
class SchedulerSource:
    """The training noise schedule the backbone noises with.

    Args:
        type (str): A key of :data:`SCHEDULERS`.
        config (Mapping): Its keyword arguments, defaults included.
        folder (str, optional): A pipeline's ``scheduler/`` folder it is loaded from; None to build it from
            ``config``.
    """
    type: str
    config: Mapping
    folder: Optional[str] = None

    @property
    def num_train_timesteps(self) -> int:
        return self.config['num_train_timesteps']

    def build(self) -> SchedulerMixin:
        scheduler_class = SCHEDULERS[self.type]
        if self.folder is None:
            return scheduler_class(**self.config)
        return scheduler_class.from_pretrained(self.folder, local_files_only=True)


def resolve_scheduler(noise_scheduler: Optional[dict], model_dir: Optional[str],
                      default: Optional[dict] = None) -> SchedulerSource:
    """``noise_scheduler`` as ``dict(type=..., **kwargs)``, else ``model_dir``'s ``scheduler/`` (a DDPM with its
    betas, or its flow matching, also a solver's on flow sigmas), else ``default`` (the family's; :data:`DEFAULT_SCHEDULER`, linear DDPM with
    T = 1000, when None)."""
    folder = pipeline_subfolder(model_dir, 'scheduler', 'scheduler_config.json') if noise_scheduler is None else None
    if folder is not None:
        class_name, config = read_diffusers_config(folder, DDPMScheduler)
        scheduler_type = class_name if class_name in FLOW_MATCHING_SCHEDULERS else 'DDPMScheduler'
        if scheduler_type == 'DDPMScheduler' and (config.get('use_flow_sigmas') or
                                                  config.get('prediction_type') == 'flow_prediction'):
            # a multistep solver on flow-matching sigmas (Sana's DPMSolverMultistepScheduler): noised as flow matching
            scheduler_type, folder = 'FlowMatchEulerDiscreteScheduler', None
            config = dict(num_train_timesteps=config.get('num_train_timesteps', 1000))  # the solvers' default
    else:
        config = dict((default or DEFAULT_SCHEDULER) if noise_scheduler is None else noise_scheduler)
        scheduler_type = config.pop('type', None)
        check_choice('noise_scheduler type', scheduler_type, SCHEDULERS)
    defaults = constructor_defaults(SCHEDULERS[scheduler_type])
    config = dict(defaults, **{key: value for key, value in config.items() if key in defaults or folder is None})
    return SchedulerSource(scheduler_type, config, folder)


def model_folder(model_dir: str, subfolder: str) -> str:
    """The folder holding the model of ``model_dir``: a model folder, or a pipeline folder's ``subfolder``."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f'model_dir {model_dir!r} does not exist; give a local diffusers folder holding '
                                f'config.json and the weights, or a pipeline folder with {subfolder}/ and scheduler/ '
                                f'(and vae/ for a latent-diffusion model)')
    if os.path.isfile(os.path.join(model_dir, subfolder, 'config.json')):
        return os.path.join(model_dir, subfolder)
    if os.path.isfile(os.path.join(model_dir, 'config.json')):
        return model_dir
    raise ValueError(f'model_dir {model_dir!r} is not a diffusers folder: it has neither config.json nor '
                     f'{subfolder}/config.json (it holds {sorted(os.listdir(model_dir))})')


def resolve_model_source(arch: Union[str, dict, None], model_dir: Optional[str], for_build: bool,
                         presets: Mapping[str, dict], classes: Mapping[str, type], subfolder: str, described: str,
                         folder_class: Callable[[str, dict], str] = lambda name, config: name,
                         default_class: bool = True) -> ModelSource:
    """The model ``arch`` (a preset name, a dict with ``type``, or None) and ``model_dir`` name, from configuration
    files alone, checked against each other.

    Args:
        arch (str | dict | None): A name in ``presets``, a dict of the model's keyword arguments (``type``: a key of
            ``classes``; without it, the first key when ``classes`` has a default, see ``default_class``), or None
            to take ``model_dir``'s model as it is.
        model_dir (str, optional): A local diffusers model folder or pipeline folder (the model in ``subfolder``).
        for_build (bool): ``model_dir`` must exist; otherwise a missing one is described by ``arch``.
        presets (Mapping[str, dict]): The family's presets.
        classes (Mapping[str, type]): The diffusers classes the family drives, by name.
        subfolder (str): A pipeline folder's subfolder holding the model (``'unet'``, ``'transformer'``).
        described (str): What the model is called in messages (``'U-Net'``).
        folder_class (Callable): The class a folder's ``_class_name`` and config name (diffusers' own remapping of
            legacy names). Defaults to the name itself.
        default_class (bool): A dict without ``type`` is the first of ``classes``; otherwise ``type`` is required.
            Defaults to True.

    Returns:
        ModelSource: The class name, its full config (defaults included) and the folder its weights load from.
    """
    check_diffusers_version()  # every family's models go through here before anything is read or built
    given, config = arch, resolve_preset('arch', arch, presets, described)
    if config is not None:
        config = dict(config)
        model_type = config.pop('type', next(iter(classes)) if default_class else None)
        check_choice('arch type', model_type, classes)
    folder = None
    if model_dir is not None and (for_build or os.path.isdir(model_dir) or config is None):
        folder = model_folder(model_dir, subfolder)
        class_name, folder_config = read_diffusers_config(folder)
        folder_type = folder_class(class_name, folder_config)
        check_choice(f'the {described} class in {folder!r}', folder_type, classes)
        if config is not None and model_type != folder_type:
            raise ValueError(f'the {described} in {folder!r} is a {folder_type}, but arch describes a {model_type}; '
                             f'set arch=None to use the folder\'s {described}')
        folder_config = dict(constructor_defaults(classes[folder_type]), **folder_config)
        if config is not None:
            check_folder_matches('arch', given, dict(constructor_defaults(classes[model_type]), **config),
                                 folder_config, folder)
        model_type, config = folder_type, folder_config
    elif config is None:
        raise ValueError(f'arch=None needs model_dir, a local diffusers folder to take the {described} from')
    return ModelSource(model_type, dict(constructor_defaults(classes[model_type]), **config), folder)


def build_model_source(source: ModelSource, classes: Mapping[str, type]) -> nn.Module:
    """The model ``source`` describes: loaded from its folder with ``local_files_only=True``, else random weights.

    Args:
        source (ModelSource): The resolved model.
        classes (Mapping[str, type]): The family's diffusers classes by name.
    """
    model_class = classes[source.class_name]
    if source.folder is not None:
        return model_class.from_pretrained(source.folder, local_files_only=True, low_cpu_mem_usage=False)
    return model_class(**source.config)
