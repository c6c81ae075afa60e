"""GIF size budgets in the render service: the brand's budget applies unless template.toml names
one, an edited budget gives new keys without preparing the template again, and renders keep to
the budget of the template as it is now (not as it was when its frames were prepared)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from loopmark.composition import build_render_service, setup_backends
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.render_service import RenderOutcome, RenderService
from tests.paths import replace_file
from tests.service.conftest import make_settings

WAIT_S = 60.0
BUDGET = 50_000  # under the small template's GIF (about 68 kB)


def done(service: RenderService, caption: str) -> RenderOutcome:
    deadline = time.monotonic() + WAIT_S
    outcome = service.request("small", caption, wait_s=WAIT_S)
    while outcome.status != "done":
        assert time.monotonic() < deadline, outcome
        time.sleep(0.05)
        outcome = service.status(outcome.key) or outcome
    return outcome


def test_a_budget_edited_in_template_toml_applies_at_once(
    tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(workdir / "templates" / "small", templates / "small")
    settings = make_settings(tmp_path, workdir, LOOPMARK_TEMPLATES_DIR=str(templates))
    setup_backends(settings)
    service = build_render_service(settings)
    try:
        before = done(service, "Budget edit")
        assert before.media["budget"]["max_bytes"] == 8_000_000  # the demo brand's
        assert before.media["budget"]["stepped"] is False
        version = service.catalog.get("small").version

        toml = templates / "small" / "template.toml"
        text = toml.read_text()
        replace_file(toml, text.replace("fps = 8\n", f"fps = 8\nmax_gif_bytes = {BUDGET}\n"))
        template = service.catalog.get("small")
        assert (template.max_gif_bytes, template.version) == (BUDGET, version)  # not prepared again

        after = done(service, "Budget edit")
        assert after.key != before.key  # the budget is in the key
        budget = after.media["budget"]
        # The template's budget as it is now, though its prepared frames were loaded before.
        assert budget["max_bytes"] == BUDGET and budget["fits"] and budget["stepped"]
        assert after.media["bytes"] == budget["bytes"] <= BUDGET
        assert after.media["width"] == small.width > budget["width"]
    finally:
        service.close()
