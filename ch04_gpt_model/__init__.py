"""Chapter 4 — Implementing a GPT model from scratch"""
