"""In-process benchmarks comparing Ampulla with other Python web frameworks."""
