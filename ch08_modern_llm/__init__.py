"""Chapter 8 — From GPT-2 to a modern open model: SmolLM2 on the course's own code"""
