"""Helper package for the sample handler."""
