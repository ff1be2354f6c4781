"""Reusable pieces the views are built from: token axes, matrix plots, themed canvases."""
