"""Preparation's folder naming: one rule for the cache folder and the site's template URLs."""

from __future__ import annotations

from loopmark.renderer.prepare import PREPARE_VERSION, PreparedTemplate, prepared_folder_name


def test_the_folder_name_joins_template_and_preparation_versions() -> None:
    assert prepared_folder_name("b7cf888cfd17167b") == f"b7cf888cfd17167b-p{PREPARE_VERSION}"
    assert prepared_folder_name("b7cf888cfd17167b", 3) == "b7cf888cfd17167b-p3"


def test_prepared_artifacts_live_in_the_named_folder(small: PreparedTemplate) -> None:
    assert small.folder.name == prepared_folder_name(small.template.version)
    assert small.folder.parent.name == small.template.id
