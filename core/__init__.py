"""The domain of the LINE Campaign Console.

Nothing in this package may import Textual or the `tui` package: the same rules serve the console,
the headless commands and the tests (a test enforces this).
"""
