"""Chapter 3 — Coding attention: from a dot product to multi-head causal attention"""
