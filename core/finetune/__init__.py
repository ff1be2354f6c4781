"""Fine-tuning on a downstream task: its metrics (``metrics.py``)."""
