"""One screen per view of the console."""
