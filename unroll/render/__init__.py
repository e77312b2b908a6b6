"""Graphviz diagrams of folded and unrolled graphs."""
