"""The completion side: the one instrumented path, the completer and the reaper."""
