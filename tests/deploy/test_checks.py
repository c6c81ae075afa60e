"""The rule packs over the synthesized app: cfn-lint and cdk-nag's AwsSolutions rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import Synth

CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")
# cfn-lint warnings accepted, each for a reason; any error, or any other warning, fails.
ACCEPTED_WARNINGS = {
    # CDK writes an explicit DependsOn from each function to its role beside the GetAtt of the
    # role's ARN; it is redundant, and harmless.
    "W3005",
}


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    templates = sorted(synth.outdir.glob("*.template.json"))
    assert templates
    result = subprocess.run(
        [CFN_LINT, "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    unexpected = [f for f in findings if f["Rule"]["Id"] not in ACCEPTED_WARNINGS]
    assert unexpected == [], json.dumps(unexpected, indent=1)
    assert result.returncode in (0, 4), result.stderr  # 4: warnings only


def nag_report(outdir: Path) -> dict[str, object]:
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    return dict(nag)


def test_cdk_nag_leaves_no_unacknowledged_findings(synth: Synth) -> None:
    """cdk-nag 3 is a validation plugin: it writes its findings to the report, and any error
    left unacknowledged would already have failed the synth in the fixture."""
    nag = nag_report(synth.outdir)
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledgement_gives_a_reason(synth: Synth) -> None:
    rules: dict[str, str] = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                rules.update(entry.data)
    assert {rule.split("[")[0] for rule in rules} == {
        "AwsSolutions::AwsSolutions-IAM5",
        "AwsSolutions::AwsSolutions-CFR1",
        "AwsSolutions::AwsSolutions-CFR2",
        "AwsSolutions::AwsSolutions-CFR4",
        "AwsSolutions::AwsSolutions-SQS3",
        # CDK's own note that it leaves a referenced bucket's policy alone (cdn.py writes it).
        "Annotation::@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
    }
    # IAM5 names each accepted resource: the bucket prefix, the table's indexes and the
    # incoming prefix (the renderer deletes processed uploads), no more.
    wildcards = sorted(rule.split("::", 2)[2] for rule in rules if "IAM5" in rule)
    assert [w.rsplit(">", 1)[1] for w in wildcards] == [
        "/index/*]",
        "/media/*]",
        "/media/incoming/*]",
    ]
    assert all(len(reason) > 30 for reason in rules.values()), rules
