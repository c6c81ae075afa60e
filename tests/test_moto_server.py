import boto3

from tests.moto_server import reset


def test_moto_server_speaks_s3_over_http(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="probe")
    s3.put_object(Bucket="probe", Key="k", Body=b"v")
    assert s3.get_object(Bucket="probe", Key="k")["Body"].read() == b"v"
    reset(aws)
    assert s3.list_buckets()["Buckets"] == []
