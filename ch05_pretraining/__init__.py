"""Chapter 5 — Pretraining on unlabeled data"""
