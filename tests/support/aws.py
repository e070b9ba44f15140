"""The AWS default credential chain of a server under test, pointed at the test setup's S3 server."""

from __future__ import annotations

from tests.support.services import S3Service

# The bucket the tests keep ARN sources in.
SOURCE_BUCKET = "arn-sources"

# Everything the AWS default chain could find on this machine is pointed at nothing. (The container
# and web-identity variables are left unset: set but empty, botocore would still try them.)
NO_AMBIENT_AWS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SESSION_TOKEN": "",
    "AWS_ENDPOINT_URL": "",
}


def aws_env(s3: S3Service, *, credentials: bool) -> dict[str, str]:
    return {
        **NO_AMBIENT_AWS,
        "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
        "AWS_REGION": s3.region,
        "AWS_ACCESS_KEY_ID": s3.access_key if credentials else "",
        "AWS_SECRET_ACCESS_KEY": s3.secret_key if credentials else "",
    }
