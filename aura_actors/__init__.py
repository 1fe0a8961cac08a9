"""aura-actors: a structured-concurrency job runtime on trio."""

__version__ = "0.1.0"
