"""The backbone's speed options: precision of the pass and of the weights, memory format, attention kernels and
``torch.compile`` (with or without CUDA graphs). None of them changes what the features are beyond its precision.
"""
from typing import Callable, Dict, Union

import torch
from torch import Tensor, nn

from mmdiff.diffusers_compat import ATTENTION_PROCESSORS, set_attention_processor
from mmdiff.utils.choices import check_choice

DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
# torch.compile modes that record CUDA graphs on a GPU (their outputs live in the graphs' memory pool)
CUDA_GRAPH_MODES = ('reduce-overhead', 'max-autotune')

PassFunction = Callable[..., Dict[str, Tensor]]


def check_precision(dtype: str, weights_dtype: str, frozen: bool) -> None:
    """Check the autocast ``dtype`` and the ``weights_dtype`` of the U-Net together.

    Half-precision weights are for a frozen U-Net (an optimizer step in bf16 would lose most updates), and they
    run under autocast to their own dtype, so that every op computes in the dtype autocast picks for it, as with
    float32 weights (on CUDA, normalisations and softmax in float32).

    Args:
        dtype (str): The autocast dtype, a key of :data:`DTYPES`.
        weights_dtype (str): The dtype the U-Net's weights are kept in, a key of :data:`DTYPES`.
        frozen (bool): Whether the U-Net is frozen.
    """
    check_choice('dtype', dtype, DTYPES)
    check_choice('weights_dtype', weights_dtype, DTYPES)
    if weights_dtype == 'float32':
        return
    if not frozen:
        raise ValueError(f'weights_dtype={weights_dtype!r} keeps the U-Net weights in half precision, which only '
                         f'a frozen U-Net can do; set frozen=True, or weights_dtype=\'float32\' with '
                         f'dtype={weights_dtype!r} (autocast) to fine-tune')
    if dtype != weights_dtype:
        raise ValueError(f'weights_dtype={weights_dtype!r} runs under autocast to the same dtype, but '
                         f'dtype={dtype!r}; set dtype={weights_dtype!r}')


def prepare_model(model: nn.Module, weights_dtype: str, channels_last: bool, attention: str) -> None:
    """Set the denoising model's weight dtype, memory format and attention processor in place.

    Args:
        model (nn.Module): The diffusers model.
        weights_dtype (str): A key of :data:`DTYPES`; the weights are cast once, here. Loading float32 weights
            later (``load_state_dict``, ``init_cfg``) casts them to it.
        channels_last (bool): Convert the convolution weights to the channels-last memory format.
        attention (str): ``'sdpa'`` or ``'math'`` (:func:`set_attention_processor`).
    """
    check_choice('attention', attention, ATTENTION_PROCESSORS)
    set_attention_processor(model, attention)
    if weights_dtype != 'float32':
        # nn.Module's cast: diffusers' own `to(dtype)` warns of float32-only modules even where a model has none
        nn.Module.to(model, dtype=DTYPES[weights_dtype])
    if channels_last:
        model.to(memory_format=torch.channels_last)


def compile_pass(function: PassFunction, torch_compile: Union[bool, dict]) -> PassFunction:
    """``function`` (a model pass returning tap name -> tensor), compiled as ``torch_compile`` asks.

    With a mode that records CUDA graphs (:data:`CUDA_GRAPH_MODES`), each call starts a new graph step and its
    outputs are copied out of the graphs' memory pool, so features kept from one batch stay valid while the next
    batch replays the graph into the same memory. Off CUDA those modes compile without graphs.

    Args:
        function (Callable): The pass.
        torch_compile (bool | dict): False (eager), True (``torch.compile`` defaults) or its keyword arguments,
            e.g. ``dict(mode='reduce-overhead')``.

    Returns:
        Callable: The pass to call.
    """
    if not isinstance(torch_compile, (bool, dict)):
        raise TypeError(f'torch_compile must be a bool or a dict of torch.compile arguments, got {torch_compile!r}')
    if not torch_compile:
        return function
    options = torch_compile if isinstance(torch_compile, dict) else {}
    compiled = torch.compile(function, **options)
    if options.get('mode') not in CUDA_GRAPH_MODES:
        return compiled

    def graph_pass(*args) -> Dict[str, Tensor]:
        torch.compiler.cudagraph_mark_step_begin()
        return {name: output.clone() for name, output in compiled(*args).items()}

    return graph_pass
