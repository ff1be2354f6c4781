"""The Train tab: training runs in child processes (their settings, events, history and views)."""
