"""``python -m crossrec`` runs the project like ``kedro run``; ``crossrec serve`` starts the API."""

from __future__ import annotations

import sys
from pathlib import Path

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def main(*args, **kwargs):
    if not args and sys.argv[1:2] == ["serve"]:  # `crossrec serve ...`: the HTTP API
        from crossrec.api.cli import main as serve

        sys.exit(serve(sys.argv[2:]))
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
