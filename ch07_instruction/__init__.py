"""Chapter 7 — Instruction fine-tuning: from a base model to an assistant you can evaluate"""
