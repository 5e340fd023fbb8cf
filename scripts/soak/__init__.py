"""Soak and fault run of ``trueframe serve``: ``python -m scripts.soak`` (see ``__main__``)."""
