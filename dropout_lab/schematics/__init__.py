"""Schematic drawings for the book, one module per chapter (``chNN_name.py``).

Each module draws with matplotlib only and returns the Figure, so a hidden code cell
of the chapter page renders it with a caption like any executed figure. Schematics
illustrate; they measure nothing.
"""
