"""Helpers shared by the test folders (generated media, signing, services, fakes); no tests here."""
