"""Serves Plotly's bundle from the pinned `plotly` package as static/vendor/plotly.min.js, so no
CDN is needed and no copy of it is kept in this repository."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

BUNDLE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC_PATH = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    storage = FileSystemStorage(location=str(BUNDLE.parent))

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != STATIC_PATH:
            return [] if find_all else None
        return [str(BUNDLE)] if find_all else str(BUNDLE)

    def list(self, ignore_patterns):
        yield BUNDLE.name, _PrefixedStorage()


class _PrefixedStorage(FileSystemStorage):
    """Lists the bundle under vendor/ for collectstatic."""

    prefix = "vendor"

    def __init__(self):
        super().__init__(location=str(BUNDLE.parent))
