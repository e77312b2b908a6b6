"""Import recurrent models from other frameworks (PyTorch, Keras, ONNX); each framework is
imported lazily, only by the functions that need it."""

from .keras_models import (
    KERAS_INSTALL_HINT,
    KerasImport,
    KerasInteropError,
    MissingKerasError,
    from_keras,
    load_keras,
)
from .onnx_models import (
    ONNX_INSTALL_HINT,
    MissingOnnxError,
    OnnxImport,
    OnnxInteropError,
    from_onnx,
    load_onnx,
)
from .torch_modules import (
    INSTALL_HINT,
    SUPPORTED,
    MissingTorchError,
    TorchImport,
    TorchInteropError,
    TorchKind,
    from_torch,
    load_state_dict,
)

__all__ = [
    "INSTALL_HINT",
    "KERAS_INSTALL_HINT",
    "ONNX_INSTALL_HINT",
    "SUPPORTED",
    "KerasImport",
    "KerasInteropError",
    "MissingKerasError",
    "MissingOnnxError",
    "MissingTorchError",
    "OnnxImport",
    "OnnxInteropError",
    "TorchImport",
    "TorchInteropError",
    "TorchKind",
    "from_keras",
    "from_onnx",
    "from_torch",
    "load_keras",
    "load_onnx",
    "load_state_dict",
]
