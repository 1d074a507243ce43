"""Chapter 2 — Working with text: tokens, windows and embeddings"""
