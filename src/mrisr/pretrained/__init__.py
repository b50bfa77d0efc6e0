"""Model files shipped with mrisr: ``<name>.safetensors`` + ``<name>.json`` (see :mod:`mrisr.models.modelfile`).

``mrisr upscale --model NAME`` and ``load_model_file("NAME")`` resolve ``NAME`` here; ``mrisr models list``
shows what is available.
"""
