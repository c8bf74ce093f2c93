"""The Temporal connection: read from the standard ``TEMPORAL_*`` variables and
``temporal.toml`` profiles through ``temporalio.envconfig``, the deprecated
``HANDSHAKE_TEMPORAL_*`` aliases, clear start-up errors, and no secret in any message."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from handshake_obs import ConfigurationError
from handshake_obs._errors import TemporalConnectionError
from handshake_obs.config import (
    CONFIG_FILE_VARIABLE,
    TemporalConnection,
    TemporalTLS,
    connection_error,
    read_settings,
)

CERT = b"-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
KEY = (
    b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-secret-key-body\n"
    b"-----END PRIVATE KEY-----\n"
)
API_KEY = "sk-live-0123456789abcdef"


def pem_files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ca.pem").write_bytes(CERT)
    (tmp_path / "client.pem").write_bytes(CERT)
    (tmp_path / "client.key").write_bytes(KEY)
    return {
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tmp_path / "ca.pem"),
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "client.pem"),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "client.key"),
    }


def test_nothing_set_is_plaintext_to_localhost() -> None:
    connection = read_settings({}).temporal_connection()
    assert connection == TemporalConnection()
    assert connection.client_connect_arguments() == {
        "target_host": "localhost:7233",
        "namespace": "default",
        "tls": False,
    }


def test_the_standard_variables_give_address_namespace_mtls_and_api_key(tmp_path: Path) -> None:
    env = {
        "TEMPORAL_ADDRESS": "prod.tmprl.cloud:7233",
        "TEMPORAL_NAMESPACE": "prod.acct",
        "TEMPORAL_API_KEY": API_KEY,
        "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        "TEMPORAL_GRPC_META_X_TEAM": "payments",
        **pem_files(tmp_path),
    }
    settings = read_settings(env)
    connection = settings.temporal_connection()
    assert (connection.address, connection.namespace) == ("prod.tmprl.cloud:7233", "prod.acct")
    assert connection.tls == TemporalTLS("temporal.internal", CERT, CERT, KEY)
    arguments = connection.client_connect_arguments()
    assert arguments["api_key"] == API_KEY
    assert arguments["rpc_metadata"] == {"x-team": "payments"}
    tls = arguments["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.domain, tls.server_root_ca_cert, tls.client_cert, tls.client_private_key) == (
        "temporal.internal", CERT, CERT, KEY,
    )  # fmt: skip
    # What the sidecar shows and reports follows the same connection.
    config = settings.handshake_config()
    assert (config.temporal_address, config.temporal_namespace) == (
        "prod.tmprl.cloud:7233", "prod.acct",
    )  # fmt: skip


def test_an_api_key_alone_turns_tls_on_and_tls_false_turns_it_off() -> None:
    assert read_settings({"TEMPORAL_API_KEY": API_KEY}).temporal_connection().tls == TemporalTLS()
    off = read_settings({"TEMPORAL_API_KEY": API_KEY, "TEMPORAL_TLS": "false"})
    assert off.temporal_connection().tls is None


def test_a_temporal_toml_profile_is_read_with_its_own_namespace_and_inline_tls(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "temporal.toml"
    toml.write_text(
        "[profile.default]\n"
        'address = "localhost:7233"\n'
        "[profile.prod]\n"
        'address = "prod:7233"\n'
        'namespace = "payments"\n'
        f'api_key = "{API_KEY}"\n'
        "[profile.prod.tls]\n"
        f'client_cert_data = """{CERT.decode()}"""\n'
        f'client_key_data = """{KEY.decode()}"""\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(toml), "TEMPORAL_PROFILE": "prod"}
    connection = read_settings(env).temporal_connection()
    assert (connection.address, connection.namespace, connection.profile) == (
        "prod:7233", "payments", "prod",
    )  # fmt: skip
    assert connection.api_key == API_KEY
    assert connection.tls is not None
    assert (connection.tls.client_cert, connection.tls.client_private_key) == (CERT, KEY)
    # A variable overrides the profile; the command line's option overrides both.
    env["TEMPORAL_ADDRESS"] = "env:7233"
    assert read_settings(env).temporal_connection().address == "env:7233"
    argument = read_settings(env, temporal_address="arg:7233").temporal_connection()
    assert (argument.address, argument.namespace) == ("arg:7233", "payments")
    default = read_settings({"TEMPORAL_CONFIG_FILE": str(toml)}).temporal_connection()
    assert (default.address, default.tls) == ("localhost:7233", None)


def test_the_deprecated_variables_still_work_with_a_deprecation_warning() -> None:
    env = {"HANDSHAKE_TEMPORAL_ADDRESS": "old:7233", "HANDSHAKE_TEMPORAL_NAMESPACE": "old-ns"}
    with pytest.warns(DeprecationWarning, match="HANDSHAKE_TEMPORAL_") as caught:
        connection = read_settings(env).temporal_connection()
    assert (connection.address, connection.namespace) == ("old:7233", "old-ns")
    assert sorted(str(w.message) for w in caught) == [
        "HANDSHAKE_TEMPORAL_ADDRESS is deprecated: set TEMPORAL_ADDRESS instead",
        "HANDSHAKE_TEMPORAL_NAMESPACE is deprecated: set TEMPORAL_NAMESPACE instead",
    ]


def test_a_deprecated_variable_beside_the_standard_one_is_ignored_with_a_warning() -> None:
    env = {"HANDSHAKE_TEMPORAL_ADDRESS": "old:7233", "TEMPORAL_ADDRESS": "new:7233"}
    with pytest.warns(DeprecationWarning, match="ignored: TEMPORAL_ADDRESS is set"):
        assert read_settings(env).temporal_connection().address == "new:7233"


def test_the_config_files_temporal_keys_are_deprecated_too(tmp_path: Path) -> None:
    path = tmp_path / "handshake.toml"
    path.write_text('temporal_address = "file:7233"\n')
    with pytest.warns(DeprecationWarning, match=r"config file .*temporal_address is deprecated"):
        connection = read_settings({CONFIG_FILE_VARIABLE: str(path)}).temporal_connection()
    assert connection.address == "file:7233"


def test_the_command_line_address_is_not_deprecated(recwarn: pytest.WarningsRecorder) -> None:
    connection = read_settings({}, temporal_address="arg:7233").temporal_connection()
    assert connection.address == "arg:7233"
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TEMPORAL_TLS_CLIENT_CERT_PATH": "/nowhere/client.pem"}, "/nowhere/client.pem does not"),
        ({"TEMPORAL_TLS_CLIENT_KEY_PATH": "CA"}, "client key file .*ca.pem is not a PEM private"),
        ({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "KEY"}, "server CA certificate file .* not a PEM"),
        ({"TEMPORAL_TLS_CLIENT_KEY_PATH": ""}, "a client certificate needs its key"),
        ({"TEMPORAL_PROFILE": "nope"}, "Profile 'nope' not found"),
        ({"TEMPORAL_CONFIG_FILE": "/nowhere/temporal.toml"}, "TEMPORAL_CONFIG_FILE: /nowhere"),
        ({"TEMPORAL_TLS": "maybe"}, "TEMPORAL_TLS: 'maybe' is not true or false"),
    ],
)
def test_bad_tls_settings_are_start_up_errors_that_name_the_file_not_its_content(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    env = {"TEMPORAL_ADDRESS": "t:7233", "TEMPORAL_API_KEY": API_KEY, **pem_files(tmp_path)}
    files = {"CA": str(tmp_path / "ca.pem"), "KEY": str(tmp_path / "client.key")}
    env.update({name: files.get(value, value) for name, value in change.items()})
    with pytest.raises(ConfigurationError, match=message) as raised:
        read_settings({k: v for k, v in env.items() if v}).temporal_connection()
    assert API_KEY not in str(raised.value)
    assert "secret-key-body" not in str(raised.value)


def test_no_secret_in_the_repr_or_the_description(tmp_path: Path) -> None:
    env = {"TEMPORAL_API_KEY": API_KEY, "TEMPORAL_GRPC_META_TOKEN": "meta-secret-value"}
    connection = read_settings({**env, **pem_files(tmp_path)}).temporal_connection()
    for text in (repr(connection), connection.describe(), repr(read_settings(env))):
        assert API_KEY not in text
        assert "secret-key-body" not in text
        assert "meta-secret-value" not in text
    assert "API key" in connection.describe()
    assert "client certificate" in connection.describe()


#: (the SDK's text, what our message says, retryable): seen against a real TLS proxy.
SDK_FAILURES = [
    (
        "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
        'ConnectError(ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, kind: '
        'ConnectionRefused, message: "Connection refused" })))',
        "nothing answers there yet",
        True,
    ),
    (
        "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
        "ConnectError(Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }))",
        "the server's certificate is not trusted",
        False,
    ),
    (
        "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
        "InconsistentKeys(KeyMismatch))",
        "the client certificate or private key cannot be used",
        False,
    ),
    (
        "Failed client connect: `get_system_info` call error after connection: Status { code: "
        'Internal, message: "protocol error: received message with invalid compression flag: '
        '60 (valid flags are 0 and 1) while receiving response with status: 400 Bad Request"',
        "the server refused the TLS client certificate",
        False,
    ),
    (
        "Failed client connect: `get_system_info` call error after connection: Status { code: "
        'Internal, message: "protocol error: received message with invalid compression flag: '
        '60 (valid flags are 0 and 1) while receiving response with status: 401 Unauthorized"',
        "the server refused the credentials: check the API key",
        False,
    ),
    (
        "Failed client connect: `get_system_info` call error after connection: Status { code: "
        'Unauthenticated, message: "invalid API key" }',
        "the server refused the credentials",
        False,
    ),
    (
        "Failed client connect: `get_system_info` call error after connection: Status { code: "
        'Internal, message: "h2 protocol error: http2 error", source: Some(tonic::transport::'
        'Error(Transport, hyper::Error(Http2, Error { kind: GoAway(b"", FRAME_SIZE_ERROR, '
        "Library) }))) }",
        "TLS is on at one end only",
        False,
    ),
    (
        # The same mismatch when the TLS server hangs up before answering the preface.
        "Failed client connect: `get_system_info` call error after connection: Status { code: "
        'Cancelled, message: "operation was canceled", source: Some(tonic::transport::Error('
        'Transport, hyper::Error(Canceled, "connection closed"))) }',
        "TLS is on at one end only",
        False,
    ),
]


@pytest.mark.parametrize(("sdk_text", "meaning", "retryable"), SDK_FAILURES)
def test_each_kind_of_connection_failure_is_named(
    sdk_text: str, meaning: str, retryable: bool
) -> None:
    connection = TemporalConnection(address="t:7233", api_key=API_KEY)
    error = connection_error(connection, RuntimeError(sdk_text + f" key={API_KEY}"))
    assert isinstance(error, TemporalConnectionError)
    assert isinstance(error, ConfigurationError)  # the CLI prints it as one line, exit 2
    assert meaning in str(error)
    assert "cannot reach Temporal at t:7233" in str(error)
    assert error.retryable is retryable
    assert API_KEY not in str(error)
