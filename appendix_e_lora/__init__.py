"""Appendix E — Parameter-efficient fine-tuning with LoRA"""
