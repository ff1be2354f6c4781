"""``python main.py``: open BertScope's window (the same as the ``bertscope`` command)."""

import sys

from app.launch import main

if __name__ == "__main__":
    sys.exit(main())
