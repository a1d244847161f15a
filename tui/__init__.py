"""The LINE Campaign Console's front doors: the Textual app and the `lcc` command line.

Business rules live in `core`; this package only calls into it.
"""
