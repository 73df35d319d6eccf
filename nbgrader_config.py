"""nbgrader configuration: solutions/ is the source, chapters/ the release.

One nbgrader assignment per chapter; the assignment id is the folder name
(e.g. ``04-scaling``). Student notebooks are regenerated with
``make student`` (scripts/generate_student.py), never by hand.
"""
c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)
c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"
c.CourseDirectory.db_url = "sqlite:///grading/gradebook.db"
