"""Networks: 2D/3D super-resolution generators, discriminators/critics, the registry and the model file.

``build_model(name, **kwargs)`` builds a registered network; ``load_model_file(path_or_name)`` rebuilds one
from a ``.safetensors`` model file (weights + JSON metadata, never pickles).
"""

from mrisr.models.modelfile import load_model_file, read_model_metadata, save_model_file
from mrisr.models.registry import build_model, list_models, model_info

__all__ = ["build_model", "list_models", "load_model_file", "model_info", "read_model_metadata", "save_model_file"]
