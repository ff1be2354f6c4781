"""One view per file, each named for what it shows; all observe :class:`app.state.AppState`."""
