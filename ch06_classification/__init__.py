"""Chapter 6 — Fine-tuning for classification: an SMS spam filter"""
