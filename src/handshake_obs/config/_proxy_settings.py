"""Settings of ``handshake-obs proxy``: where it listens, and which activities hand off.

It reads nothing itself: :meth:`handshake_obs.config.Settings.proxy_settings` fills it from
the ``HANDSHAKE_PROXY_*`` variables and the config file. The upstream is the standard
Temporal connection (:class:`~handshake_obs.config.TemporalConnection`), like every other
process's. "Setting ``name``" below is the variable ``HANDSHAKE_NAME`` and the file key
``name``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import ConfigurationError

#: Largest message the proxy passes either way: Temporal's own frontend limit is 128 MiB
#: (history pages, big payloads), so the proxy never refuses what Temporal would accept.
DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AsyncActivity:
    """One activity type whose tasks complete asynchronously (the proxy records them).

    Written ``[task_queue/]activity_type[=target]``: ``ApproveOrder=approval``,
    ``orders/ApproveOrder=approval``, ``RunAgent``.
    """

    activity_type: str
    #: Target of its handoffs (None: the activity type's target, else the default target).
    target: str | None = None
    #: Only tasks of this task queue (None: every task queue).
    task_queue: str | None = None

    @classmethod
    def parse(cls, text: str) -> AsyncActivity:
        """``[task_queue/]activity_type[=target]``; raises :class:`ConfigurationError`."""
        spec, has_target, target = text.strip().partition("=")
        queue, has_queue, activity_type = spec.rpartition("/")
        parts = [activity_type, *([target] if has_target else []), *([queue] if has_queue else [])]
        if any(not part.strip() for part in parts):
            raise ConfigurationError(
                f"async activity {text!r} must be [task_queue/]activity_type[=target]"
            )
        return cls(
            activity_type.strip(),
            target.strip() if has_target else None,
            queue.strip() if has_queue else None,
        )


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Everything ``handshake-obs proxy`` needs beyond :class:`HandshakeConfig` and the
    Temporal connection."""

    #: host:port workers and completers dial instead of Temporal's. Loopback by default:
    #: the proxy forwards credentials, so exposing it is a decision.
    #: Setting ``proxy_listen_address``.
    listen_address: str = "127.0.0.1:7234"
    #: host:port of the proxy's ``/metrics``. Setting ``proxy_metrics_address``.
    metrics_address: str = "127.0.0.1:9465"
    #: Activity types whose poll responses are recorded as handoffs. Setting
    #: ``proxy_async_activities`` (a list; comma separated in the environment), each
    #: ``[task_queue/]activity_type[=target]``.
    async_activities: tuple[AsyncActivity, ...] = ()
    #: Largest gRPC message passed either way.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        for name in ("listen_address", "metrics_address"):
            host, _, port = getattr(self, name).rpartition(":")
            if not host or not port.isdigit():
                raise ConfigurationError(
                    f"proxy {name} must be host:port, not {getattr(self, name)!r}"
                )
        seen: set[tuple[str | None, str]] = set()
        for rule in self.async_activities:
            key = (rule.task_queue, rule.activity_type)
            if key in seen:
                raise ConfigurationError(f"async activity {rule.activity_type!r} listed twice")
            seen.add(key)

    def async_rule(self, activity_type: str, task_queue: str) -> AsyncActivity | None:
        """The rule that makes this activity asynchronous (a task queue's own rule first);
        None: forwarded untouched, not recorded."""
        fallback = None
        for rule in self.async_activities:
            if rule.activity_type != activity_type:
                continue
            if rule.task_queue == task_queue:
                return rule
            if rule.task_queue is None:
                fallback = rule
        return fallback
