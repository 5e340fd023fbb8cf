"""Package data: ``manifest.toml`` (every model trueframe knows) and the small weights it ships.

A package so that ``importlib.resources`` finds the manifest in a wheel as well as in a checkout.
"""
