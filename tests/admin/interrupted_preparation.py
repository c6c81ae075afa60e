"""An admin process that dies with a preparation under way: it starts one (a new upload's, or an
edit's new frames) while another preparation holds the process's one-at-a-time lock, says so,
and waits for the test's SIGKILL. Run as
``python -m tests.admin.interrupted_preparation TMP_PATH WORKDIR TEMPLATES_DIR upload|edit``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from loopmark.admin.preparation import preparations
from loopmark.app import create_app
from loopmark.renderer.authoring import NewTemplate, create_template
from loopmark.service.catalog import DirectoryTemplateCatalog
from loopmark.web.context import services
from tests.paths import CLIP
from tests.site.conftest import site_config

HANG_SECONDS = 600
TRIM_START = 0.5  # the edit's new trim start


def main() -> None:
    tmp_path, workdir, templates, kind = sys.argv[1:5]
    config = site_config(Path(tmp_path), Path(workdir), LOOPMARK_TEMPLATES_DIR=templates)
    app = create_app(config)
    catalog = services(app).templates
    assert isinstance(catalog, DirectoryTemplateCatalog)
    jobs = preparations(catalog, app)
    jobs._one_at_a_time.acquire()  # another preparation is under way: this one waits its turn
    if kind == "upload":
        spec = NewTemplate("tiny", CLIP, start_s=1.0, duration_s=0.5, width=96, fps=6,
                           name="Tiny bunny", published=False)  # fmt: skip
        create_template(spec, Path(templates))
        assert jobs.start("tiny", remove_on_failure=True)
    else:
        template = catalog.get("small", enabled_only=False)
        data = {**template.raw, "trim": {**template.raw.get("trim", {}), "start": TRIM_START}}
        assert jobs.start_edit(template, data)
    print("started", flush=True)
    time.sleep(HANG_SECONDS)


if __name__ == "__main__":
    main()
