"""Node signatures Kedro can read without warnings: a Union hint on a ``params:`` input makes
Kedro 1.x log "Union type hint ... is not supported for validation" on every run."""

from __future__ import annotations

import logging

from kedro.framework.project import configure_project
from kedro.validation.type_extractor import TypeExtractor

from crossrec.pipeline_registry import register_pipelines


def test_no_node_warns_about_its_parameter_hints(caplog):
    configure_project("crossrec")
    with caplog.at_level(logging.WARNING, logger="kedro"):
        TypeExtractor(register_pipelines()).extract_types_from_pipelines()
    assert not [r.getMessage() for r in caplog.records if "type hint" in r.getMessage()]
