"""Alarms: what an operator must hear about, sent to one SNS topic (an e-mail subscription when
``alarmEmail`` is given; anything else can subscribe to the topic later).

- renderer errors (a render that raised: infrastructure, not a refused caption) and throttles
  (reserved concurrency reached: renders wait in Lambda's queue);
- dead letters: a render event that failed every attempt or aged out;
- DynamoDB read or write throttling on the table (on-demand tables throttle past their
  partition or account limits);
- site 5xx answers at its function URL.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
RENDERER_ERRORS_THRESHOLD = 5  # per 5 minutes: a few retried failures are routine
SITE_5XX_THRESHOLD = 10  # per 5 minutes


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        renderer: lambda_.IFunction,
        dead_letters: sqs.IQueue,
        table: dynamodb.ITable,
        site: lambda_.IFunction,
        email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", display_name="Loopmark alarms", enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        def metric(namespace: str, name: str, dimension: str, value: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map={dimension: value},
                statistic="Sum",
                period=PERIOD,
            )

        def table_metric(name: str) -> cloudwatch.Metric:
            return metric("AWS/DynamoDB", name, "TableName", table.table_name)

        watched = {
            "RendererErrors": (
                renderer.metric_errors(period=PERIOD, statistic="Sum"),
                RENDERER_ERRORS_THRESHOLD,
                "Renders raised errors (Lambda retries them; repeated failures reach the DLQ)",
            ),
            "RendererThrottles": (
                renderer.metric_throttles(period=PERIOD, statistic="Sum"),
                1,
                "Renders were throttled: reserved concurrency reached, events wait in the queue",
            ),
            "DeadLetters": (
                dead_letters.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                1,
                "Render events failed every attempt or aged out (see the dead-letter queue)",
            ),
            "TableReadThrottles": (
                table_metric("ReadThrottleEvents"),
                1,
                "DynamoDB throttled reads of the records table",
            ),
            "TableWriteThrottles": (
                table_metric("WriteThrottleEvents"),
                1,
                "DynamoDB throttled writes to the records table",
            ),
            "Site5xx": (
                metric("AWS/Lambda", "Url5xxCount", "FunctionName", site.function_name),
                SITE_5XX_THRESHOLD,
                "The site answered 5xx (storage or records outage, or a bug)",
            ),
        }
        action = actions.SnsAction(self.topic)
        for name, (watched_metric, threshold, description) in watched.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                metric=watched_metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            alarm.add_alarm_action(action)
