"""Experiments behind the prose pages' figures. Public code: it uses torch's
built-in dropout and closed-form maths, never a solution of a graded exercise."""
