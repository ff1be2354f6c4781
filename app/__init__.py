"""BertScope's window: PySide6 + pyqtgraph views that render what ``core`` computes.

Nothing here does model maths. Model work (loading, probing, masked-word prediction) runs in
one worker thread (:mod:`app.engine`); :mod:`app.probe.state` keeps the loaded models and the latest
probe result and tells the views through signals. Each tab is a package (:mod:`app.probe`,
:mod:`app.compare`, :mod:`app.train`) holding its state, its engine calls and its views.
Importing this package does not import torch: the window shows first, the engine loads behind it.
"""
