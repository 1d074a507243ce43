"""Chapter 0 — a PyTorch primer: tensors, shapes, autograd, modules and a training loop."""
