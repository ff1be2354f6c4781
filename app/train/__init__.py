"""The Train tab: training runs in child processes (TrainState, their settings, events, history
and views)."""
