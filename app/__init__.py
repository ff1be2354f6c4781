"""BertScope's window: PySide6 + pyqtgraph views that render what ``core`` computes.

Nothing here does model maths. Model work (loading, probing, masked-word prediction) runs in
one worker thread (:mod:`app.engine`); :mod:`app.state` keeps the loaded models and the latest
probe result and tells the views through signals; each view in :mod:`app.views` draws one thing.
Importing this package does not import torch: the window shows first, the engine loads behind it.
"""
