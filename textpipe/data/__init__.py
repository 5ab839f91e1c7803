"""Datasets: files, download, cache and parsing. Knows nothing about models."""
