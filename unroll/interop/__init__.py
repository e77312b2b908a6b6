"""Import recurrent modules from other frameworks (PyTorch); torch itself is imported lazily."""

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
    "SUPPORTED",
    "MissingTorchError",
    "TorchImport",
    "TorchInteropError",
    "TorchKind",
    "from_torch",
    "load_state_dict",
]
