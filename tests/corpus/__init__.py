"""Corpora of implementations used to prove the checks both ways.

For each chapter module ``chNN_name``:
- ``chNN_name_variants.py`` defines ``VARIANTS = {grade_id: [(label, fn), ...]}``:
  correct implementations written differently (mask drawn another way, float32,
  bool vs float masks, loops vs vectorised); each must score full marks under
  every seed.
- ``chNN_name_mutants.py`` defines ``MUTANTS = {grade_id: [(label, fn), ...]}``:
  the mistakes students make; each must lose points on its function under
  every seed. An entry may be ``(label, fn, max_share)``: then it may keep at
  most that share of its function's points (0 for a forgery: a function that
  returns plausible claims without computing the answer must earn nothing).
"""
