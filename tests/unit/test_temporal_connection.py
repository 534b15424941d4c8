"""How the lab reaches a Temporal that is not the local dev server: Temporal Cloud by API
key (TLS on by itself), an mTLS namespace by client certificate, a plain cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from stratlab.config import Settings
from stratlab.runtime import StackError, temporal_tls


def test_a_plain_cluster_gets_no_tls_and_an_api_key_turns_it_on() -> None:
    assert temporal_tls(Settings.from_env({})) is False
    cloud = Settings.from_env({"TEMPORAL_API_KEY": "key", "TEMPORAL_NAMESPACE": "lab.acct"})
    assert temporal_tls(cloud) is True
    # A proxy that terminates TLS itself: the setting wins.
    assert temporal_tls(cloud.model_copy(update={"temporal_tls": False})) is False
    assert temporal_tls(Settings.from_env({"TEMPORAL_TLS": "true"})) is True


def test_a_client_certificate_is_read_from_the_paths_the_temporal_cli_uses(
    tmp_path: Path,
) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    settings = Settings.from_env(
        {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert), "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key)}
    )
    tls = temporal_tls(settings)
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == cert.read_bytes() and tls.client_private_key == key.read_bytes()


def test_half_a_certificate_or_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    only_cert = Settings.from_env({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "c.pem")})
    with pytest.raises(StackError, match="both TEMPORAL_TLS_CLIENT_CERT_PATH"):
        temporal_tls(only_cert)
    missing = Settings.from_env(
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "c.pem"),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "k.pem"),
        }
    )
    with pytest.raises(StackError, match="cannot read the Temporal client certificate"):
        temporal_tls(missing)


def test_the_api_key_is_a_secret_that_logs_redact() -> None:
    settings = Settings.from_env({"TEMPORAL_API_KEY": "tk-very-secret"})
    assert "tk-very-secret" in settings.secrets()
    assert "tk-very-secret" not in repr(settings)
