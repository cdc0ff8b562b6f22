from .repfusion_distiller import RepFusionDistiller
from .timestep_policy import TimestepPolicy

__all__ = ['RepFusionDistiller', 'TimestepPolicy']
