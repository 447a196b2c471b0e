"""The package version, in a module of its own so that the disk owner can record it without importing the
package facade (``ncmargin/__init__.py`` lazily exports :class:`~ncmargin.empirical.recorder.Recorder`)."""

__version__ = "0.1.0"
