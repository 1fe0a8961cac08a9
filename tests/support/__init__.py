"""Helpers shared by the end-to-end tests (servers on free ports, in-process or as processes)."""
