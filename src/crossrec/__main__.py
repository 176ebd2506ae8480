"""``python -m crossrec`` runs the project like ``kedro run``; ``crossrec serve`` starts the API.

``--verbose`` prints the full traceback of a data or configuration error (by default the run
ends with its message and the traceback goes to info.log)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project


def main(*args, **kwargs):
    if not args and sys.argv[1:2] == ["serve"]:  # `crossrec serve ...`: the HTTP API
        from crossrec.api.cli import main as serve

        sys.exit(serve(sys.argv[2:]))
    if "--verbose" in sys.argv[1:]:  # full tracebacks of data / config errors too
        sys.argv.remove("--verbose")
        os.environ["CROSSREC_TRACEBACK"] = "1"
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
