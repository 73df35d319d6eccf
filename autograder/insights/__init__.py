"""What the class got wrong: a report for the lecturer, and grades for the LMS.

``python -m autograder insights OUT [--run RUN ...]`` (also run at the end of
``grade``) reads ``report.json`` and the nbgrader gradebook of one or many
grading runs and writes into ``OUT``:

* ``class_report.html``: one self-contained page (plots embedded as data
  URIs, no script, a Content-Security-Policy that forbids every request);
* ``class_report.json``: the same numbers, machine-readable;
* ``canvas_grades.csv`` and ``moodle_grades.csv``: grades as the two LMSs
  import them, mapped through an optional roster
  (:mod:`autograder.insights.exports`), and ``lms_unrostered.csv`` listing the
  submissions no roster entry claims.

With ``--anonymise`` it writes ``class_report_anonymised.html`` / ``.json``
instead, every student named by a stable pseudonym, and no export (an LMS needs
real identities). The named report is never overwritten by it.

One job per module:

* :mod:`.sources`: report.json files and gradebooks in, one :class:`~.sources.ClassData` out;
* :mod:`.roster`: the optional roster CSV;
* :mod:`.aggregate`: the numbers (per assignment, per function, per sub-check, per student);
* :mod:`.anonymise`: stable pseudonyms and a scrub of every string;
* :mod:`.plots`: matplotlib figures as PNG data URIs;
* :mod:`.page`: the HTML page;
* :mod:`.exports`: Canvas and Moodle CSV files;
* :mod:`.command`: the command line and the orchestration of the above.
"""
from .command import InsightsError, add_parser, run, write_insights

__all__ = ["InsightsError", "add_parser", "run", "write_insights"]
