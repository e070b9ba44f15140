"""Downloading asset content named by an S3 object ARN (``source.s3.arn`` of a store request).

The object is read with GetObject under credentials from the AWS default provider chain only:
environment variables, the shared profile files, web identity and the container or instance role,
exactly as any AWS SDK finds them. The ``object-store.s3`` keys are deliberately not used: they
configure where konifer-edge keeps its own objects, which may be a different account, a different
provider or no S3 at all. The endpoint may likewise be redirected the AWS way
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``), e.g. towards an S3-compatible store.

Every failure is an upstream failure (502), with the S3 error code (``NoSuchKey``,
``AccessDenied``...) as the machine-readable ``error``; only an object over ``max-bytes`` is 413,
as for URL sources. botocore is synchronous, so each download runs in a thread of its own.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any, Final

import msgspec

from konifer_edge.domain.errors import BadRequest, PayloadTooLarge, UpstreamFailed

_CHUNK_BYTES: Final = 256 * 1024
# An S3 error code is a short CamelCase word; anything else (a proxy's HTML, say) is not repeated.
_ERROR_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,63}")
_DEFAULT_REGION: Final = "us-east-1"


class S3ObjectSource(msgspec.Struct, frozen=True):
    """A validated ``arn:<partition>:s3:::<bucket>/<key>``."""

    arn: str
    bucket: str
    key: str


class S3SourceError(UpstreamFailed):
    """An ARN source that could not be read; ``reason`` is the S3 error code where S3 gave one."""


class S3ObjectDownloader:
    """Reads ARN sources; one per server worker, shared by its requests."""

    def __init__(self, *, max_bytes: int, timeout_seconds: float) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    async def download(self, source: S3ObjectSource) -> bytes:
        return await asyncio.to_thread(self._download, source)

    def _download(self, source: S3ObjectSource) -> bytes:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            CredentialRetrievalError,
            NoCredentialsError,
            ParamValidationError,
            PartialCredentialsError,
        )

        try:
            client = self._client_with_credentials()
            answer = client.get_object(Bucket=source.bucket, Key=source.key)
            return self._read_capped(answer)
        except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as error:
            raise _no_credentials() from error
        except ParamValidationError as error:
            raise BadRequest(f"S3 cannot read {source.arn!r}: {error}", reason="invalid_arn") from error
        except ClientError as error:
            raise _client_error(error.response, source) from error
        except BotoCoreError as error:
            raise S3SourceError(
                f"S3 could not be reached for {source.arn!r}: {type(error).__name__}", reason="upstream_unreachable"
            ) from error

    def _client_with_credentials(self) -> Any:
        """The S3 client, made once credentials exist; until then every call looks for them again."""
        with self._lock:
            if self._client is not None:
                return self._client
            import botocore.session
            from botocore.config import Config

            session = botocore.session.get_session()
            if session.get_credentials() is None:
                raise _no_credentials()
            config = Config(
                connect_timeout=min(self._timeout, 10.0),
                read_timeout=self._timeout,
                retries={"max_attempts": 3, "mode": "standard"},
            )
            region = session.get_config_variable("region") or _DEFAULT_REGION
            self._client = session.create_client("s3", region_name=region, config=config)
            return self._client

    def _read_capped(self, answer: dict[str, Any]) -> bytes:
        body = answer["Body"]
        try:
            declared = answer.get("ContentLength")
            if isinstance(declared, int) and declared > self._max_bytes:
                raise _too_large(self._max_bytes)
            content = bytearray()
            while chunk := body.read(_CHUNK_BYTES):
                content += chunk
                if len(content) > self._max_bytes:
                    raise _too_large(self._max_bytes)
            return bytes(content)
        finally:
            body.close()


def _no_credentials() -> S3SourceError:
    return S3SourceError(
        "No AWS credentials were found to read the S3 source (environment, profile, web identity or instance role)",
        reason="no_credentials",
    )


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The S3 object is larger than {max_bytes} bytes", reason="too_large")


def _client_error(response: dict[str, Any], source: S3ObjectSource) -> S3SourceError:
    raw_code = str(response.get("Error", {}).get("Code", ""))
    code = raw_code if _ERROR_CODE.fullmatch(raw_code) else "S3Error"
    if code in ("404", "NotFound"):
        code = "NoSuchKey"
    elif code == "403":
        code = "AccessDenied"
    return S3SourceError(f"S3 answered {code} for {source.arn!r}", reason=code)
