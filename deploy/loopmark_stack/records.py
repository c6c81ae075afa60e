"""RecordsTable: the one DynamoDB table every record kind shares, made exactly as the app's own
``loopmark setup`` would make it (loopmark/records/dynamodb.py ``DynamoTable.setup``: key
``key`` (S), TABLE_INDEXES plus the statistics' CAPTIONS_INDEX_SPEC, TTL on TTL_ATTRIBUTE), so
that ``loopmark setup`` run against it finds nothing to add. The names are repeated here rather
than imported: the CDK app must synthesize without the app's dependencies installed, and
tests/deploy checks both stay equal."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

PARTITION_KEY = "key"
TTL_ATTRIBUTE = "expires_at"
# (name, partition (name, type), sort (name, type), projection)
GLOBAL_INDEXES = (
    ("recent", ("listing", "S"), ("updated_at", "N"), dynamodb.ProjectionType.ALL),
    ("captions", ("caption_day", "S"), ("caption_count", "N"), dynamodb.ProjectionType.KEYS_ONLY),
)
_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}

# What the app calls (records/*.py): GetItem, BatchGetItem, Query, UpdateItem, and transactions,
# which IAM authorizes per item (TransactWriteItems: Put/Update/Delete/ConditionCheck items;
# TransactGetItems: GetItem). DescribeTable backs the health check and `loopmark setup`.
DATA_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)


class RecordsTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        for name, (pk, pk_type), (sk, sk_type), projection in GLOBAL_INDEXES:
            self.table.add_global_secondary_index(
                index_name=name,
                partition_key=dynamodb.Attribute(name=pk, type=_TYPES[pk_type]),
                sort_key=dynamodb.Attribute(name=sk, type=_TYPES[sk_type]),
                projection_type=projection,
            )

    @property
    def records_url(self) -> str:
        return f"dynamodb://{self.table.table_name}"

    def grant_app(self, grantee: iam.IGrantable) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RecordsTable",
                actions=list(DATA_ACTIONS),
                resources=[self.table.table_arn, f"{self.table.table_arn}/index/*"],
            )
        )
