"""Where the project's data files are: the checkout's folders, or the copies shipped in the wheel."""

from __future__ import annotations

from pathlib import Path


def data_dir(package: str, repo_folder: str):
    """Where a data folder of the project is: the checkout's top-level folder (``mappings/``,
    ``dashboards/``) when running from a checkout, else the copy shipped in the wheel as the data
    package ``package`` (see pyproject.toml)."""
    here = Path(__file__).resolve().parent.parent / repo_folder
    if here.is_dir():
        return here
    from importlib import resources

    return resources.files(package)
