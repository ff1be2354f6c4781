"""The Probe tab: one sentence through one model (AppState, its engine calls, its views)."""
