"""Planted-bug implementations for "find the bug" exercises, one module per chapter
(``chNN_name.py``). Each suspect has the interface of a graded function and exactly one
mistake; students find it with their own checks, not by being told."""
