"""Fine-tuning on a downstream task: a labelled file as a task (``tasks.py``), its metrics
(``metrics.py``)."""
