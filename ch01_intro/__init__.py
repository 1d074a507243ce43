"""Chapter 1 — Understanding large language models"""
