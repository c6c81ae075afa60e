"""The synthesized CloudFormation template: every resource the deployment needs, configured as
deploy/README.md says, and permissions no wider than the app uses."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Match

from loopmark import lambda_entry
from loopmark.records import dynamodb as app_dynamodb
from loopmark.records import stats as app_stats
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL
from loopmark.web.i18n import COOKIE_NAME, VARY_HEADERS
from tests.deploy.conftest import Synth

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
PARAMETER_PREFIX = "/loopmark/prod/"


def logical_id(synth: Synth, kind: str, contains: str = "") -> str:
    matches = [k for k in synth.resources(kind) if contains in k]
    assert len(matches) == 1, f"{kind} containing {contains!r}: {matches}"
    return matches[0]


def refers_to(value: Any, logical: str) -> bool:
    """Whether a CloudFormation value references the resource ``logical`` (Ref or GetAtt)."""
    text = json.dumps(value)
    return f'{{"Ref": "{logical}"}}' in text or f'"Fn::GetAtt": ["{logical}"' in text


def statements(synth: Synth) -> list[dict[str, Any]]:
    """Every statement of every identity policy: AWS::IAM::Policy and roles' inline policies."""
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        found += policy["Properties"]["PolicyDocument"]["Statement"]
    for role in synth.resources("AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            found += inline["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def functions(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth.resources("AWS::Lambda::Function")


def function(synth: Synth, contains: str) -> dict[str, Any]:
    # CloudFormation JSON: a resource's Properties are an object.
    properties: dict[str, Any] = functions(synth)[
        logical_id(synth, "AWS::Lambda::Function", contains)
    ]["Properties"]
    return properties


# -- media bucket ------------------------------------------------------------------------------


def test_buckets_are_private_encrypted_and_tls_only(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # media and logs
    for logical, bucket in buckets.items():
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical
        rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        policies = [
            p
            for p in synth.resources("AWS::S3::BucketPolicy").values()
            if refers_to(p["Properties"]["Bucket"], logical)
        ]
        assert len(policies) == 1, logical
        denies = [
            s
            for s in policies[0]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies and denies[0]["Action"] == "s3:*", logical


def test_media_bucket_logs_expires_temporary_objects_and_allows_only_site_reads(
    synth: Synth,
) -> None:
    media = synth.resources("AWS::S3::Bucket")[logical_id(synth, "AWS::S3::Bucket", "Media")]
    properties = media["Properties"]
    logs = logical_id(synth, "AWS::S3::Bucket", "Logs")
    assert refers_to(properties["LoggingConfiguration"]["DestinationBucketName"], logs)
    rules = properties["LifecycleConfiguration"]["Rules"]
    expiring = {r["Prefix"]: r["ExpirationInDays"] for r in rules if "Prefix" in r}
    prefixes = ("tmp/", "uploads/", "incoming/")
    assert expiring == {p: 1 for p in (*(f"media/{p}" for p in prefixes), *prefixes)}
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)
    reads, uploads = properties["CorsConfiguration"]["CorsRules"]
    assert sorted(reads["AllowedMethods"]) == ["GET", "HEAD"]
    assert uploads["AllowedMethods"] == ["POST"]  # a visitor's presigned POST
    assert reads["AllowedOrigins"] == uploads["AllowedOrigins"] == ["https://*.cloudfront.net"]
    assert media["DeletionPolicy"] == "Retain"


def test_only_processed_uploads_are_deleted_by_the_renderer(synth: Synth) -> None:
    deletes = [st for st in statements(synth) if st.get("Sid") == "DeleteProcessedUploads"]
    assert len(deletes) == 1
    assert deletes[0]["Action"] == "s3:DeleteObject"
    assert json.dumps(deletes[0]["Resource"]).endswith('/media/incoming/*"]]}')


# -- CDN ---------------------------------------------------------------------------------------


def distribution(synth: Synth) -> dict[str, Any]:
    config: dict[str, Any] = synth.one("AWS::CloudFront::Distribution")["Properties"][
        "DistributionConfig"
    ]
    return config


def behaviors(synth: Synth) -> dict[str, dict[str, Any]]:
    config = distribution(synth)
    found = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    found["default"] = config["DefaultCacheBehavior"]
    return found


def test_media_are_served_through_origin_access_control(synth: Synth) -> None:
    oac = synth.one("AWS::CloudFront::OriginAccessControl")["Properties"]
    assert oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    oac_id = logical_id(synth, "AWS::CloudFront::OriginAccessControl")
    media = logical_id(synth, "AWS::S3::Bucket", "Media")
    (s3_origin,) = [o for o in distribution(synth)["Origins"] if "S3OriginConfig" in o]
    assert refers_to(s3_origin["DomainName"], media)
    assert refers_to(s3_origin["OriginAccessControlId"], oac_id)
    assert "OriginPath" not in s3_origin  # /media/r/… is the object media/r/…
    assert behaviors(synth)["/media/*"]["TargetOriginId"] == s3_origin["Id"]
    # Only this distribution may read, and only the render media (not pushed templates).
    policy = synth.resources("AWS::S3::BucketPolicy")
    (grant,) = [
        s
        for p in policy.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert grant["Action"] == "s3:GetObject"
    assert json.dumps(grant["Resource"]).endswith('"/media/r/*"]]}')
    source = grant["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert refers_to(source, logical_id(synth, "AWS::CloudFront::Distribution"))


def test_every_behavior_redirects_to_https(synth: Synth) -> None:
    found = behaviors(synth)
    assert set(found) == {"default", "/media/*", "/static/*", "/api/*", "/admin*", "/graphql"}
    for path, behavior in found.items():
        assert behavior["ViewerProtocolPolicy"] == "redirect-to-https", path
    assert "ViewerCertificate" not in distribution(synth)  # CloudFront's own, without a domain


def test_caching_follows_each_path(synth: Synth) -> None:
    found = behaviors(synth)
    for path in ("/media/*", "/static/*"):
        assert found[path]["CachePolicyId"] == CACHING_OPTIMIZED, path
        assert found[path]["AllowedMethods"] == ["GET", "HEAD"], path
    for path in ("/api/*", "/admin*", "/graphql"):
        assert found[path]["CachePolicyId"] == CACHING_DISABLED, path
        assert found[path]["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST, path
        assert "POST" in found[path]["AllowedMethods"], path
    pages = found["default"]
    assert pages["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
    policy = synth.one("AWS::CloudFront::CachePolicy")["Properties"]["CachePolicyConfig"]
    assert refers_to(pages["CachePolicyId"], logical_id(synth, "AWS::CloudFront::CachePolicy"))
    # The page's own Cache-Control decides; a page that says nothing is not stored.
    assert (policy["MinTTL"], policy["DefaultTTL"]) == (0, 0)
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    # The language a page speaks (web/i18n.py): the cookie and header it says Vary for.
    assert key["CookiesConfig"] == {"CookieBehavior": "whitelist", "Cookies": [COOKIE_NAME]}
    assert key["HeadersConfig"] == {
        "HeaderBehavior": "whitelist",
        "Headers": ["Accept-Language"],
    }
    assert set(VARY_HEADERS) == {"Accept-Language", "Cookie"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    # The media's year-long Cache-Control is the app's, stored with each object.
    assert "max-age=31536000" in IMMUTABLE_CACHE_CONTROL


def test_site_origin_is_the_function_url_with_the_origin_verify_header(synth: Synth) -> None:
    (site_origin,) = [o for o in distribution(synth)["Origins"] if "CustomOriginConfig" in o]
    url = logical_id(synth, "AWS::Lambda::Url")
    assert refers_to(site_origin["DomainName"], url)
    assert site_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert site_origin["OriginCustomHeaders"] == [
        {
            "HeaderName": "X-Loopmark-Origin-Verify",
            "HeaderValue": "{{resolve:ssm:/loopmark/prod/origin-verify}}",
        }
    ]
    assert behaviors(synth)["default"]["TargetOriginId"] == site_origin["Id"]
    # Auth type NONE: a browser's form POST cannot carry x-amz-content-sha256 (cdn.py).
    assert synth.one("AWS::Lambda::Url")["Properties"]["AuthType"] == "NONE"


# -- records -----------------------------------------------------------------------------------


def test_table_is_the_one_loopmark_setup_makes(synth: Synth) -> None:
    table = synth.one("AWS::DynamoDB::Table")
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    wanted = app_dynamodb.TABLE_INDEXES + (app_stats.CAPTIONS_INDEX_SPEC,)
    made = {i["IndexName"]: i for i in properties["GlobalSecondaryIndexes"]}
    assert set(made) == {i["IndexName"] for i in wanted}
    for index in wanted:
        assert made[index["IndexName"]]["KeySchema"] == index["KeySchema"]
        assert made[index["IndexName"]]["Projection"] == index["Projection"]
    types = {**app_dynamodb.KEY_ATTRIBUTES, **app_stats.CAPTIONS_INDEX_ATTRIBUTES}
    defined = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    assert all(types[name] == kind for name, kind in defined.items())
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": app_dynamodb.TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


# -- functions ---------------------------------------------------------------------------------


def shared_environment(synth: Synth) -> dict[str, Any]:
    media = logical_id(synth, "AWS::S3::Bucket", "Media")
    table = logical_id(synth, "AWS::DynamoDB::Table")
    return {
        "LOOPMARK_STORAGE": {"Fn::Join": ["", ["s3://", {"Ref": media}, "/media"]]},
        "LOOPMARK_RECORDS": {"Fn::Join": ["", ["dynamodb://", {"Ref": table}]]},
        "LOOPMARK_TEMPLATES_SOURCE": "storage",
        "LOOPMARK_DATA_DIR": "/tmp/loopmark",
    }


def test_renderer_function(synth: Synth) -> None:
    renderer = function(synth, "Renderer")
    assert renderer["PackageType"] == "Image"
    assert renderer["Architectures"] == ["x86_64"]
    assert renderer["MemorySize"] == 2048
    assert renderer["Timeout"] == 60
    assert renderer["EphemeralStorage"] == {"Size": 1024}
    assert renderer["ReservedConcurrentExecutions"] == 100
    assert renderer["Environment"]["Variables"] == shared_environment(synth)


def test_site_function_environment(synth: Synth) -> None:
    site = function(synth, "Site")
    assert site["PackageType"] == "Image"
    assert "ReservedConcurrentExecutions" not in site
    renderer = logical_id(synth, "AWS::Lambda::Function", "Renderer")
    assert site["Environment"]["Variables"] == {
        **shared_environment(synth),
        "LOOPMARK_DISPATCH": {"Fn::Join": ["", ["lambda://", {"Ref": renderer}]]},
        "LOOPMARK_PROXY_HOPS": "1",
        "LOOPMARK_TRUSTED_PROXIES": "*",
        "LOOPMARK_SECRET_KEY": f"ssm:{PARAMETER_PREFIX}secret-key",
        "LOOPMARK_ORIGIN_VERIFY": f"ssm:{PARAMETER_PREFIX}origin-verify",
        "LOOPMARK_SITE_URL": f"ssm:{PARAMETER_PREFIX}site-url",
        "LOOPMARK_MEDIA_BASE_URL": f"ssm:{PARAMETER_PREFIX}media-base-url",
        "LOOPMARK_CDN_PURGE": f"ssm:{PARAMETER_PREFIX}cdn-purge",
    }


def test_images_are_the_containerfile_targets(synth: Synth) -> None:
    assets = json.loads(next(synth.outdir.glob("*.assets.json")).read_text())
    images = [a["source"] for a in assets["dockerImages"].values()]
    assert sorted(i["dockerBuildTarget"] for i in images) == ["renderer", "site"]
    for image in images:
        assert image["dockerFile"] == "Containerfile"
        assert image["platform"] == "linux/amd64"
        staged = synth.outdir / image["directory"]
        assert (staged / "Containerfile").is_file()
        # The build context leaves out the virtualenv, the CDK output and the tests.
        assert not {".venv", "deploy", "tests", ".git"} & {p.name for p in staged.iterdir()}


def test_published_settings_follow_the_distribution(synth: Synth) -> None:
    parameters = {
        p["Properties"]["Name"]: p["Properties"]
        for p in synth.resources("AWS::SSM::Parameter").values()
    }
    assert set(parameters) == {
        PARAMETER_PREFIX + leaf for leaf in ("site-url", "media-base-url", "cdn-purge")
    }
    cdn = logical_id(synth, "AWS::CloudFront::Distribution")
    site_url = parameters[PARAMETER_PREFIX + "site-url"]["Value"]
    assert site_url == {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [cdn, "DomainName"]}]]}
    media = parameters[PARAMETER_PREFIX + "media-base-url"]["Value"]
    assert media["Fn::Join"][1][-1] == "/media/"
    purge = parameters[PARAMETER_PREFIX + "cdn-purge"]["Value"]
    assert purge == {"Fn::Join": ["", ["cloudfront://", {"Ref": cdn}]]}
    assert all(p["Type"] == "String" for p in parameters.values())


def test_failed_renders_go_to_the_dead_letter_queue(synth: Synth) -> None:
    config = synth.one("AWS::Lambda::EventInvokeConfig")["Properties"]
    queue = logical_id(synth, "AWS::SQS::Queue")
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": [queue, "Arn"]}
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 3600
    assert refers_to(config["FunctionName"], logical_id(synth, "AWS::Lambda::Function", "Rend"))
    properties = synth.one("AWS::SQS::Queue")["Properties"]
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 86400


def test_every_function_logs_to_its_own_group_with_retention(synth: Synth) -> None:
    groups = synth.resources("AWS::Logs::LogGroup")
    assert len(groups) == len(functions(synth)) == 2
    assert all(g["Properties"]["RetentionInDays"] == 30 for g in groups.values())
    used = {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions(synth).values()}
    assert used == set(groups)


# -- permissions -------------------------------------------------------------------------------


def test_no_wildcard_actions_and_no_managed_policies(synth: Synth) -> None:
    found = statements(synth)
    assert found
    for statement in found:
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
        assert statement["Effect"] == "Allow"
        assert statement.get("Resource") not in ("*", ["*"]), statement
    for role in synth.resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_data_permissions_name_the_stacks_own_bucket_and_table(synth: Synth) -> None:
    media = logical_id(synth, "AWS::S3::Bucket", "Media")
    table = logical_id(synth, "AWS::DynamoDB::Table")
    seen = set()
    for statement in statements(synth):
        services = {a.split(":")[0] for a in as_list(statement["Action"])}
        assert len(services) == 1, statement
        (service,) = services
        for resource in as_list(statement["Resource"]):
            if service == "s3":
                assert refers_to(resource, media), statement
                seen.add(service)
            elif service == "dynamodb":
                assert refers_to(resource, table), statement
                seen.add(service)
    assert seen == {"s3", "dynamodb"}


def test_site_reads_exactly_its_parameters(synth: Synth) -> None:
    reads = [s for s in statements(synth) if "ssm:GetParameter" in as_list(s["Action"])]
    assert len(reads) == 1 and as_list(reads[0]["Action"]) == ["ssm:GetParameter"]
    arns = sorted(json.dumps(r) for r in reads[0]["Resource"])
    leaves = ["cdn-purge", "media-base-url", "origin-verify", "secret-key", "site-url"]
    for arn, leaf in zip(arns, leaves, strict=True):
        assert arn.endswith(f':parameter{PARAMETER_PREFIX}{leaf}"]]}}'), arn
    assert not any("kms:" in a for s in statements(synth) for a in as_list(s["Action"]))


def test_site_invalidates_only_its_distribution_and_invokes_only_the_renderer(
    synth: Synth,
) -> None:
    found = {a: s for s in statements(synth) for a in as_list(s["Action"])}
    cdn = logical_id(synth, "AWS::CloudFront::Distribution")
    assert refers_to(found["cloudfront:CreateInvalidation"]["Resource"], cdn)
    renderer = logical_id(synth, "AWS::Lambda::Function", "Renderer")
    assert found["lambda:InvokeFunction"]["Resource"] == {"Fn::GetAtt": [renderer, "Arn"]}


def test_the_site_requeues_lost_renders_every_five_minutes(synth: Synth) -> None:
    rule = synth.one("AWS::Events::Rule")["Properties"]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    site = logical_id(synth, "AWS::Lambda::Function", "Site")
    assert target["Arn"] == {"Fn::GetAtt": [site, "Arn"]}
    # The event the site's handler takes for its scheduled requeue (and no HTTP event has).
    assert json.loads(target["Input"]) == {
        lambda_entry.SCHEDULED_TASK_KEY: lambda_entry.REQUEUE_TASK
    }
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 0}
    rule_id = logical_id(synth, "AWS::Events::Rule")
    (permission,) = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["FunctionName"] == {"Fn::GetAtt": [site, "Arn"]}
    assert permission["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


# -- alarms and outputs ------------------------------------------------------------------------


def test_alarms_watch_what_breaks(synth: Synth) -> None:
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    metrics = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    assert metrics == [
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "Url5xxCount"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ]
    topic = logical_id(synth, "AWS::SNS::Topic")
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]


def test_outputs(synth: Synth) -> None:
    synth.template.has_output("SiteUrl", Match.any_value())
    outputs = synth.json["Outputs"]
    assert set(outputs) >= {
        "SiteUrl",
        "DistributionId",
        "MediaBucketName",
        "StorageUrl",
        "TableName",
        "RecordsUrl",
        "RendererFunctionName",
    }
    renderer = logical_id(synth, "AWS::Lambda::Function", "Renderer")
    assert outputs["RendererFunctionName"]["Value"] == {"Ref": renderer}


def test_stack_is_environment_agnostic(synth: Synth) -> None:
    """Synthesized with no account: deploy takes the account and region of the credentials."""
    assert synth.stack.resolve(synth.stack.account) == {"Ref": "AWS::AccountId"}
    assert synth.stack.resolve(synth.stack.region) == {"Ref": "AWS::Region"}
    assert re.search(r"\b\d{12}\b", json.dumps(synth.json)) is None
