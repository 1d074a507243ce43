"""Device choice and seeding: one helper each, used by every chapter."""

import os
import random


def get_device():
    """The best available ``torch.device``: cuda, then mps, then cpu.

    ``LLM_COURSE_DEVICE`` (e.g. ``cpu``) overrides the choice. MPS is used only
    on torch >= 2.9, where the operations the course needs are supported.
    """
    import torch
    from packaging.version import Version

    forced = os.environ.get("LLM_COURSE_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and Version(torch.__version__.split("+")[0]) >= Version("2.9"):
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 123) -> None:
    """Seed Python, NumPy (if present) and PyTorch on every device."""
    import torch

    random.seed(seed)
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds cuda and mps
