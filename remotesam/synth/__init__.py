"""Procedural Earth-observation benchmark in the official file formats."""
