"""One explicit pass through a diffusers diffusion transformer that returns the wanted blocks' image tokens as maps
and runs no block behind the last one (timm's ``forward_intermediates(stop_early=True)``)."""
from typing import Collection, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmdiff.diffusers_compat import (TokenState, modulation_parameters, text_output_modules, tokens_to_map,
                                     transformer_blocks, transformer_embedding_modules)


class TransformerPass:
    """The blocks of a ``DiTTransformer2DModel``, ``PixArtTransformer2DModel``, ``SD3Transformer2DModel``,
    ``FluxTransformer2DModel`` or ``SanaTransformer2DModel`` and the pass that runs them.

    The embeddings run as the model's forward runs them (:class:`~mmdiff.diffusers_compat.TokenState`), then each
    block, called as the model calls it, up to the deepest wanted one; its image tokens are returned as a map
    ``(B, C, h, w)`` on the token grid. No hooks, no state between calls: the pass traces and exports.

    Args:
        model (nn.Module): The transformer. Its modules are called, not copied.
        modulated (bool): Return each block's tokens as the norm after it hands them on, with the AdaLN shift and
            scale of the current step (DiTF's features, :meth:`TokenState.modulate`). Defaults to False.
    """

    def __init__(self, model: nn.Module, modulated: bool = False) -> None:
        self.model = model
        self.modulated = modulated
        self.blocks = transformer_blocks(model)
        self._position = {name: index for index, (name, _) in enumerate(self.blocks)}

    @property
    def step_names(self) -> List[str]:
        """Every name a pass can return, in forward order."""
        return list(self._position)

    def _last(self, wanted: Collection[str]) -> int:
        unknown = [name for name in wanted if name not in self._position]
        if unknown or not wanted:
            raise KeyError(f'{unknown or "nothing"} cannot be returned by this transformer pass; valid names are: '
                           f'{", ".join(self._position)}')
        return max(self._position[name] for name in wanted)

    def parameters_used(self, wanted: Collection[str]) -> List[nn.Parameter]:
        """The parameters a pass for ``wanted`` can give a gradient: the embeddings', the blocks' up to the deepest
        wanted one, but not what only makes that block's text tokens (no later block reads them), nor the output
        head's; with :attr:`modulated`, also the norms that modulate the wanted blocks' outputs."""
        last = self._last(wanted)
        text_only = {id(p) for module in text_output_modules(self.blocks[last][1]) for p in module.parameters()}
        modules = transformer_embedding_modules(self.model) + [block for _, block in self.blocks[:last + 1]]
        used = [p for module in modules for p in module.parameters() if id(p) not in text_only]
        if self.modulated:
            used += [p for name in wanted for p in modulation_parameters(self.model, self._next_block(name))]
        return list({id(p): p for p in used}.values())

    def _next_block(self, name: str) -> Optional[nn.Module]:
        """The block after ``name`` (None after the last), whose norm modulates its output."""
        position = self._position[name] + 1
        return self.blocks[position][1] if position < len(self.blocks) else None

    def __call__(self,
                 sample: Tensor,
                 timesteps: Tensor,
                 wanted: Collection[str],
                 context: Optional[Tensor] = None,
                 labels: Optional[Tensor] = None,
                 pooled: Optional[Tensor] = None,
                 image_size: Optional[Tuple[int, int]] = None,
                 guidance: Optional[float] = None,
                 additions: Optional[Mapping[str, Tensor]] = None,
                 checkpointing: bool = False,
                 zeroed_channels: Optional[Mapping[str, Tensor]] = None) -> Dict[str, Tensor]:
        """Run the transformer up to the last wanted block.

        Args:
            sample (Tensor): The noised latents ``(B, C, h, w)``; h and w multiples of the token stride.
            timesteps (Tensor): Noise steps ``(B,)`` in [0, T).
            wanted (Collection[str]): Block names from :attr:`step_names`.
            context (Tensor, optional): Text tokens ``(B, L, D)``.
            labels (Tensor, optional): Class labels ``(B,)`` (DiT).
            pooled (Tensor, optional): The pooled text embedding ``(B, P)`` (SD3, FLUX).
            image_size (tuple[int, int], optional): The images' (H, W) (PixArt-alpha's size conditioning).
            guidance (float, optional): FLUX's distilled guidance scale.
            additions (Mapping[str, Tensor], optional): Not supported: feedback is a U-Net option (DifFeed).
            checkpointing (bool): Gradient checkpointing of each block while gradients are enabled.
            zeroed_channels (Mapping[str, Tensor], optional): Per wanted block, channel indices ``(k,)`` its output
                has zeroed (before the modulating norm, as DiTF discards massive activations); the tokens handed to
                the next block keep them. Defaults to None.

        Returns:
            dict[str, Tensor]: Each wanted block's image tokens as a map ``(B, C, h / stride, w / stride)``.
        """
        if additions:
            raise ValueError(f'additions to {sorted(additions)}: feedback into a transformer pass is not supported')
        last = self._last(wanted)
        state = TokenState(self.model, sample, timesteps, context, labels, pooled, image_size, guidance)
        tokens, text = state.tokens, state.context
        outputs: Dict[str, Tensor] = {}
        for name, block in self.blocks[:last + 1]:
            if checkpointing and torch.is_grad_enabled():
                text, tokens = checkpoint(state.apply, block, tokens, text, use_reentrant=False)
            else:
                text, tokens = state.apply(block, tokens, text)
            if name in wanted:
                feature = tokens
                if zeroed_channels is not None and name in zeroed_channels:
                    feature = feature.index_fill(-1, zeroed_channels[name], 0.0)
                if self.modulated:
                    feature = state.modulate(feature, self._next_block(name))
                outputs[name] = tokens_to_map(feature, state.grid)
        return outputs
