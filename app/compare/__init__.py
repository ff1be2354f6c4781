"""The Compare tab: two models side by side (CompareSession, its engine calls, its views)."""
