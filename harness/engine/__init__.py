"""The scenario engine: load scenario files, run them against a target, produce results."""
