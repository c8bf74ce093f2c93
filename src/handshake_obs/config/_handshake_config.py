"""The library's configuration: one frozen dataclass, every field with a working default.

What a worker, a completer and a reaper need. It reads nothing itself:
``HandshakeConfig.from_env(targets=...)`` takes the arguments given and fills the rest from
the ``HANDSHAKE_*`` variables and the config file, through
:func:`handshake_obs.config.read_settings` (argument > environment > file > default).
"Setting ``name``" below is the variable ``HANDSHAKE_NAME`` and the file key ``name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from .._errors import ConfigurationError
from .._token_keys import TokenKeys
from .._vocabulary import OTHER_TARGET

#: Upper bounds (seconds) of the pending-age buckets; the last bucket is open-ended.
DEFAULT_PENDING_AGE_BOUNDS: tuple[float, ...] = (60, 600, 3600, 6 * 3600, 24 * 3600)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a completion RPC is retried when Temporal is unavailable or slow."""

    #: Calls in all, the first included.
    max_attempts: int = 4
    #: Wait before the first retry; doubles after each.
    initial_backoff: timedelta = timedelta(milliseconds=200)
    #: Cap on the wait between two attempts.
    max_backoff: timedelta = timedelta(seconds=5)

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        seconds: float = self.initial_backoff.total_seconds() * 2.0 ** (retry_number - 1)
        return min(seconds, self.max_backoff.total_seconds())


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """How handoffs to one target are bounded and reaped."""

    #: Default deadline of a handoff to this target, from its start (None: derived from the
    #: activity's timeouts only). The earlier of the two applies.
    deadline: timedelta | None = None
    #: Whether the reaper's ``HandoffDeadlineExceeded`` lets Temporal retry the activity.
    retryable: bool = False
    #: Each accepted heartbeat moves the deadline to at least now + this (None: no effect).
    heartbeat_extends_by: timedelta | None = None


DEFAULT_TARGET_POLICY = TargetPolicy()


@dataclass(frozen=True, slots=True)
class HandshakeConfig:
    """Everything handshake-obs can be told; every field has a working default."""

    #: Where handoffs are kept: ``sqlite:///path/to/file.db`` (default) or ``postgresql://...``.
    #: Setting ``ledger_url``.
    ledger_url: str = "sqlite:///handshake.db"
    #: Temporal frontend the completer and reaper call. Setting ``temporal_address``.
    temporal_address: str = "localhost:7233"
    #: Temporal namespace. Setting ``temporal_namespace``.
    temporal_namespace: str = "default"
    #: host:port the sidecar serves ``/metrics`` (and its API) on. Setting ``listen_address``.
    listen_address: str = "127.0.0.1:9464"
    #: Target names that get their own metric label value; any other is exported as
    #: ``other``. The default target is always known. Setting ``targets`` (a list; comma
    #: separated in the environment).
    targets: tuple[str, ...] = ()
    #: Target of a handoff that names none. Setting ``default_target``.
    default_target: str = "default"
    #: Per-target deadline, retry and heartbeat policies; their names are known targets too.
    #: Setting: the config file's ``[[targets]]`` tables.
    target_policies: Mapping[str, TargetPolicy] = field(default_factory=dict)
    #: Target of handoffs recorded by the worker interceptor, by activity type.
    activity_targets: Mapping[str, str] = field(default_factory=dict)
    #: Share of an activity's timeout kept free between the derived deadline and Temporal's
    #: own timeout, so the reaper acts first.
    deadline_margin_ratio: float = 0.1
    #: Bounds of that margin.
    deadline_margin_min: timedelta = timedelta(seconds=1)
    deadline_margin_max: timedelta = timedelta(minutes=5)
    #: Timeout of each Temporal RPC on the completion path (a bogus token can hang).
    #: Setting ``rpc_timeout_seconds``.
    rpc_timeout: timedelta = timedelta(seconds=10)
    #: Retries of UNAVAILABLE / DEADLINE_EXCEEDED. Setting ``rpc_max_attempts``.
    rpc_retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Longest a completion-path call waits for one ledger write. Past it, a call about to
    #: go to Temporal is refused (``ledger_unavailable``: nothing sent) or, for a plain
    #: handle, goes ahead with its intent still being written; an outcome not yet written is
    #: recorded in the background. Setting ``ledger_call_timeout_seconds``.
    ledger_call_timeout: timedelta = timedelta(seconds=1)
    #: How often the scrape-time gauges are recomputed from the ledger.
    #: Setting ``metrics_refresh_seconds``.
    metrics_refresh_interval: timedelta = timedelta(seconds=5)
    #: Longest a scrape waits to bring the pending gauges up to this process's counters
    #: (after it recorded or finished a handoff) before it serves the last snapshot.
    #: Setting ``metrics_scrape_refresh_timeout_seconds``.
    metrics_scrape_refresh_timeout: timedelta = timedelta(seconds=1)
    #: Upper bounds of the pending-age buckets, in seconds.
    pending_age_bounds: tuple[float, ...] = DEFAULT_PENDING_AGE_BOUNDS
    #: Time between two reaper scans. Setting ``reaper_interval_seconds``.
    reaper_interval: timedelta = timedelta(seconds=5)
    #: Most expired handoffs one scan claims. Setting ``reaper_batch_size``.
    reaper_batch_size: int = 500
    #: How long a reaper's claim on a handoff lasts; a claim of a reaper that died is taken
    #: over once it runs out. Setting ``reaper_lease_seconds``.
    reaper_lease: timedelta = timedelta(seconds=60)
    #: Temporal calls one reaper makes at once. Setting ``reaper_concurrency``.
    reaper_concurrency: int = 16
    #: How long a finished handoff stays in the ledger before the reaper's loop deletes it
    #: (None: kept forever). Setting ``ledger_retention_seconds``.
    ledger_retention: timedelta | None = timedelta(days=7)
    #: Most finished handoffs one pruning transaction deletes. Setting
    #: ``ledger_prune_batch_size``.
    ledger_prune_batch_size: int = 500
    #: Keys that encrypt the task tokens the ledger stores (None: stored as given). The
    #: first encrypts, all decrypt. Settings ``token_keys`` or ``token_keys_file``; needs
    #: the ``encryption`` extra.
    token_keys: TokenKeys | None = None
    #: Whether the sidecar runs the reconciler, which closes pending handoffs that Temporal
    #: closed without handshake-obs (completed elsewhere, timed out, workflow closed).
    #: Setting ``reconcile_enabled``.
    reconcile_enabled: bool = True
    #: The reconciler's budget: most Temporal calls it makes per second (each process).
    #: Setting ``reconcile_calls_per_second``.
    reconcile_calls_per_second: float = 10.0
    #: Time between two reconciler passes. Setting ``reconcile_interval_seconds``.
    reconcile_interval: timedelta = timedelta(seconds=2)
    #: Age at which a handoff is first checked against Temporal; later checks back off in
    #: proportion to its age. Setting ``reconcile_first_check_seconds``.
    reconcile_first_check: timedelta = timedelta(seconds=5)
    #: Longest time between two checks of one handoff. Setting
    #: ``reconcile_max_check_interval_seconds``.
    reconcile_max_check_interval: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if not self.ledger_url:
            raise ConfigurationError("ledger_url must not be empty")
        if OTHER_TARGET in self.targets or self.default_target == OTHER_TARGET:
            raise ConfigurationError(f"{OTHER_TARGET!r} is reserved for unconfigured targets")
        if not 0 <= self.deadline_margin_ratio < 1:
            raise ConfigurationError("deadline_margin_ratio must be in [0, 1)")
        host, _, port = self.listen_address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(
                f"listen_address must be host:port, not {self.listen_address!r}"
            )
        self._check_durations()
        if self.rpc_retry.max_attempts < 1:
            raise ConfigurationError("rpc_retry.max_attempts must be at least 1")
        if list(self.pending_age_bounds) != sorted(set(self.pending_age_bounds)):
            raise ConfigurationError("pending_age_bounds must be strictly increasing")
        if OTHER_TARGET in self.target_policies:
            raise ConfigurationError(f"{OTHER_TARGET!r} is reserved for unconfigured targets")
        if self.reaper_batch_size < 1 or self.reaper_concurrency < 1:
            raise ConfigurationError("reaper batch size and concurrency must be at least 1")
        if self.ledger_prune_batch_size < 1:
            raise ConfigurationError("ledger_prune_batch_size must be at least 1")
        if self.reaper_lease <= self.rpc_timeout:
            raise ConfigurationError("reaper_lease must be longer than rpc_timeout")
        self._check_reconcile_settings()

    def _check_reconcile_settings(self) -> None:
        if self.reconcile_calls_per_second <= 0:
            raise ConfigurationError("reconcile_calls_per_second must be positive")
        if not timedelta(0) < self.reconcile_first_check <= self.reconcile_max_check_interval:
            raise ConfigurationError(
                "reconcile_first_check must be positive and at most reconcile_max_check_interval"
            )
        if self.reconcile_interval <= timedelta(0):
            raise ConfigurationError("reconcile_interval must be positive")

    def _check_durations(self) -> None:
        if self.rpc_timeout <= timedelta(0):
            raise ConfigurationError("rpc_timeout must be positive")
        if self.ledger_call_timeout <= timedelta(0):
            raise ConfigurationError("ledger_call_timeout must be positive")
        if self.metrics_scrape_refresh_timeout <= timedelta(0):
            raise ConfigurationError("metrics_scrape_refresh_timeout must be positive")
        if self.ledger_retention is not None and self.ledger_retention <= timedelta(0):
            raise ConfigurationError("ledger_retention must be positive (None: keep forever)")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> HandshakeConfig:
        """Arguments first, then ``HANDSHAKE_*`` variables, then the config file (its
        ``[[targets]]`` give the target policies), then defaults.

        ``environ`` defaults to the process's environment. A convenience over
        ``read_settings(environ).handshake_config(**overrides)``.
        """
        # pydantic is imported only by a process that reads its settings.
        from ._environment import read_settings  # noqa: PLC0415

        return read_settings(environ).handshake_config(**overrides)

    def with_changes(self, **changes: Any) -> HandshakeConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def known_targets(self) -> frozenset[str]:
        """Targets exported under their own name."""
        return frozenset((*self.targets, *self.target_policies, self.default_target))

    def target_label(self, target: str) -> str:
        """The bounded metric label value for ``target``."""
        return target if target in self.known_targets else OTHER_TARGET

    @property
    def listen_host_port(self) -> tuple[str, int]:
        """``listen_address`` split into host and port."""
        host, _, port = self.listen_address.rpartition(":")
        return host.strip("[]"), int(port)

    def policy(self, target: str) -> TargetPolicy:
        """The policy of ``target`` (the default policy when it has none)."""
        return self.target_policies.get(target, DEFAULT_TARGET_POLICY)

    def target_for_activity(self, activity_type: str) -> str:
        """Target of a handoff the worker interceptor records for ``activity_type``."""
        return self.activity_targets.get(activity_type, self.default_target)

    def deadline_margin(self, window: timedelta) -> timedelta:
        """Room left before Temporal's own timeout of ``window``.

        At least one reaper interval and a second, so a scan falls between the deadline and
        Temporal's timeout; never more than half the window.
        """
        margin = window * self.deadline_margin_ratio
        margin = min(max(margin, self.deadline_margin_min), self.deadline_margin_max)
        margin = max(margin, self.reaper_interval + timedelta(seconds=1))
        # Never eat more than half of a short window.
        return min(margin, window / 2)
