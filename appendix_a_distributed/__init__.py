"""Appendix A — Training on several processes: DDP with torchrun"""
