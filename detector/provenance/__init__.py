"""Provenance: the C2PA reader, the manifest card, metadata hints and the containers they are read from."""
