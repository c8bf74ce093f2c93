"""SQL text that SQLite and PostgreSQL both run as written, in either placeholder style.

Each backend's ``_statements`` module builds one :class:`SharedStatements` and adds what its
dialect does differently (locking, claiming, bucket counts).
"""

from __future__ import annotations

from typing import Any

from .._vocabulary import State
from ._interface import HandoffQuery
from ._rows import HANDOFF_COLUMNS, RECORD_COLUMNS

#: The columns a timeline entry is written with (see ``_rows.event_params``).
EVENT_COLUMNS = ("handoff_id", "at", "kind", "detail")
#: The columns a pending count's change is written with (a ``CountDelta``).
COUNT_COLUMNS = ("target", "bucket", "shard", "pending")


class SharedStatements:
    """The statements of one placeholder style (``?`` or ``%s``), on the tables named with
    ``prefix`` (a schema qualification such as ``"name".``, or nothing)."""

    def __init__(
        self,
        *,
        placeholder: str,
        bucket: str,
        shard: str,
        bucket_seconds: str,
        prefix: str = "",
        by_target_hint: str = "",
    ) -> None:
        p = self.placeholder = placeholder
        self.handoffs_table = h = f"{prefix}handoffs"
        c = f"{prefix}calls_in_flight"
        self.early_outcomes_table = e = f"{prefix}early_outcomes"
        select = f"SELECT {RECORD_COLUMNS} FROM {h}"
        returning = f"RETURNING {RECORD_COLUMNS}"

        # A new row; a token (or handoff id) recorded already is a constraint error.
        self.insert_new = (
            f"INSERT INTO {h} ({', '.join(HANDOFF_COLUMNS)}) "
            f"VALUES ({', '.join(p for _ in HANDOFF_COLUMNS)})"
        )
        # The record rule's insert: a token recorded already leaves its row as it is.
        self.insert = f"{self.insert_new} ON CONFLICT (token_digest) DO NOTHING"
        self.by_id = f"{select} WHERE handoff_id = {p}"
        self.by_digest = f"{select} WHERE token_digest = {p}"
        self.id_by_digest = f"SELECT handoff_id FROM {h} WHERE token_digest = {p}"
        self.by_activity = f"{select} WHERE workflow_id = {p} AND activity_id = {p}"
        self.by_activity_namespace = f" AND namespace = {p}"
        self.by_activity_run = f" AND run_id = {p}"
        self.by_activity_order = " ORDER BY started_at DESC, attempt DESC LIMIT 1"
        self.by_standalone = f"{select} WHERE workflow_id = '' AND activity_id = {p}"
        self.by_standalone_run = f" AND activity_run_id = {p}"
        self.older_pending_attempts = (
            f"SELECT handoff_id FROM {h} WHERE namespace = {p} AND workflow_id = {p} "
            f"AND run_id = {p} AND activity_id = {p} AND attempt < {p} AND state = 'pending' "
            "ORDER BY attempt"
        )
        self.finish = (
            f"UPDATE {h} SET state = 'finished', outcome = {p}, finished_at = {p}, "
            f"error_type = {p}, error_message = {p} WHERE handoff_id = {p} AND state = 'pending' "
            f"{returning}"
        )
        self.forget_token = (
            f"UPDATE {h} SET task_token = {p}, token_key_id = {p} WHERE handoff_id = {p}"
        )
        self.prune_early = f"DELETE FROM {e} WHERE finished_at < {p}"
        self.progress_of = f"SELECT progress_sequence FROM {h} WHERE handoff_id = {p}"
        self.set_progress = (
            f"UPDATE {h} SET progress = {p}, progress_sequence = {p}, progress_at = {p} "
            f"WHERE handoff_id = {p}"
        )
        self.set_deadline = (
            f"UPDATE {h} SET deadline = {p} WHERE handoff_id = {p} AND state = 'pending' "
            f"{returning}"
        )
        self.release = (
            f"UPDATE {h} SET claimed_by = NULL, claim_until = NULL "
            f"WHERE handoff_id = {p} AND claimed_by = {p}"
        )

        # Parameters: next check at, claimant, claimant, handoff id.
        self.schedule_check = (
            f"UPDATE {h} SET next_check_at = {p}, "
            f"claimed_by = CASE WHEN claimed_by = {p} THEN NULL ELSE claimed_by END, "
            f"claim_until = CASE WHEN claimed_by = {p} THEN NULL ELSE claim_until END "
            f"WHERE handoff_id = {p}"
        )
        # A pending handoff's reconciler check is due at its next_check_at once it has been
        # checked, and the first check delay after its start before. A claim reads the two
        # kinds apart, each in its order on the index (next_check_at, started_at) of pending
        # handoffs, as far as it claims: ordered by when each is due, the two together read
        # and sorted every due row (37 ms at 200k pending, 65 ms when none was checked yet).
        # Parameters: now, now (the claim ran out).
        self.check_scheduled_where = (
            f"state = 'pending' AND next_check_at <= {p} "
            f"AND (claim_until IS NULL OR claim_until < {p})"
        )
        # Parameters: first check before, now (the claim ran out).
        self.check_unchecked_where = (
            f"state = 'pending' AND next_check_at IS NULL AND started_at <= {p} "
            f"AND (claim_until IS NULL OR claim_until < {p})"
        )

        # Parameters: call id, until, outcome, error type, error message, handoff id.
        self.mark_call = (
            f"INSERT INTO {c} (handoff_id, call_id, until, outcome, error_type, error_message) "
            f"SELECT handoff_id, {p}, {p}, {p}, {p}, {p} "
            f"FROM {h} WHERE handoff_id = {p} AND state = 'pending'"
        )
        self.written_intent = (
            f"SELECT outcome, error_type, error_message FROM {c} "
            f"WHERE handoff_id = {p} AND outcome IS NOT NULL ORDER BY until LIMIT 1"
        )
        self.probe_write = (
            f"INSERT INTO {prefix}ledger_probe (single, at) VALUES (1, {p}) "
            "ON CONFLICT (single) DO UPDATE SET at = excluded.at"
        )
        self.end_call = f"DELETE FROM {c} WHERE handoff_id = {p} AND call_id = {p}"
        self.end_all_calls = f"DELETE FROM {c} WHERE handoff_id = {p}"
        self.live_call = f"SELECT 1 FROM {c} WHERE handoff_id = {p} AND until > {p} LIMIT 1"
        self.live_finishing_call = (
            f"SELECT 1 FROM {c} WHERE handoff_id = {p} AND until > {p} "
            "AND outcome IS NOT NULL LIMIT 1"
        )

        early_columns = "outcome, finished_at, error_type, error_message"
        self.early_of = f"SELECT {early_columns} FROM {e} WHERE token_digest = {p}"
        self.keep_early = (
            f"INSERT INTO {e} (token_digest, {early_columns}) VALUES ({p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (token_digest) DO UPDATE SET outcome = excluded.outcome, "
            "finished_at = excluded.finished_at, error_type = excluded.error_type, "
            "error_message = excluded.error_message"
        )
        self.forget_early = f"DELETE FROM {e} WHERE token_digest = {p}"
        self.take_early = f"{self.forget_early} RETURNING {early_columns}"

        self.events_table = ev = f"{prefix}handoff_events"
        self.append_event = (
            f"INSERT INTO {ev} ({', '.join(EVENT_COLUMNS)}) "
            f"VALUES ({', '.join(p for _ in EVENT_COLUMNS)})"
        )
        #: One pruned handoff's timeline (PostgreSQL deletes a batch's at once).
        self.prune_events = f"DELETE FROM {ev} WHERE handoff_id = {p}"
        # In the order written: a rule's entries share its transaction's times.
        self.events_of = (
            f"SELECT at, kind, detail FROM {ev} WHERE handoff_id = {p} ORDER BY id LIMIT {p}"
        )

        self.latencies_since = (
            f"SELECT target, outcome, finished_at - started_at FROM {h} "
            f"WHERE state = 'finished' AND finished_at >= {p} ORDER BY finished_at DESC LIMIT {p}"
        )

        #: Where the snapshot reads pending handoffs of one target: the handoffs table, with
        #: the dialect's way (if any) of keeping the query on the (target, started_at) index.
        self.pending_by_target = f"{h}{by_target_hint}"
        self._bucket_seconds = bucket_seconds
        self._pending_count_statements(prefix, bucket, shard)

        self.ping = f"SELECT 1 FROM {h} LIMIT 1"
        self.outcomes_since = (
            f"SELECT target, outcome, error_type, COUNT(*) FROM {h} "
            f"WHERE state = 'finished' AND finished_at >= {p} "
            "GROUP BY target, outcome, error_type"
        )

    def _pending_count_statements(self, prefix: str, bucket: str, shard: str) -> None:
        """The statements of the pending counts (see ``ledger/_pending_counts.py``);
        ``bucket`` and ``shard`` are the dialect's expressions of a handoff's."""
        p = self.placeholder
        self.pending_counts_table = pc = f"{prefix}pending_counts"
        # Parameters: target, bucket, shard, delta.
        self.count_pending = (
            f"INSERT INTO {pc} AS c ({', '.join(COUNT_COLUMNS)}) "
            f"VALUES ({', '.join(p for _ in COUNT_COLUMNS)}) "
            "ON CONFLICT (target, bucket, shard) "
            "DO UPDATE SET pending = c.pending + excluded.pending"
        )
        self.drop_empty_counts = f"DELETE FROM {pc} WHERE pending = 0"
        #: The pending handoffs counted afresh, as the counts keep them.
        self.recount_pending = (
            f"SELECT target, {bucket}, {shard}, COUNT(*) FROM {self.pending_by_target} "
            "WHERE state = 'pending' GROUP BY 1, 2, 3"
        )
        self.rebuild_counts = (
            f"INSERT INTO {pc} (target, bucket, shard, pending) {self.recount_pending}"
        )
        self.clear_counts = f"DELETE FROM {pc}"
        self.counted_pending = f"SELECT target, bucket, SUM(pending) FROM {pc} GROUP BY 1, 2"

    def pending_snapshot(self, cuts: int) -> str:
        """The pending snapshot in one statement (one snapshot of the store, one round
        trip), per target: the pending count; for each of ``cuts`` age cuts, the count of
        the buckets after the cut's bucket; the oldest start; then for each cut, its
        pending handoffs started from the cut's threshold to the end of its bucket.

        Parameters, in the order they appear: each cut's threshold and bucket end, then each
        cut's bucket. Only the handoffs of a few buckets are read, whichever index the
        planner takes: each cut's bucket, and for the oldest start the target's first
        counted bucket and the one before it (a start just below a bucket's first multiple
        of the width may round into it)."""
        p, h, w = self.placeholder, self.pending_by_target, self._bucket_seconds
        after_columns = [f"after_{i}" for i in range(cuts)]
        after = "".join(
            f", SUM(CASE WHEN bucket > {p} THEN pending ELSE 0 END) AS {name}"
            for name in after_columns
        )
        within = "".join(
            f", (SELECT COUNT(*) FROM {h} WHERE state = 'pending' AND target = c.target "
            f"AND started_at >= {p} AND started_at < {p})"
            for _ in range(cuts)
        )
        oldest = (
            f"(SELECT MIN(started_at) FROM {h} WHERE state = 'pending' AND target = c.target "
            f"AND started_at >= (c.first_bucket - 1) * {w})"
        )
        return (
            f"SELECT c.target, c.pending{''.join(f', c.{n}' for n in after_columns)}, "
            f"{oldest}{within} FROM (SELECT target, SUM(pending) AS pending, "
            f"MIN(bucket) AS first_bucket{after} FROM {self.pending_counts_table} "
            "WHERE pending <> 0 GROUP BY target HAVING SUM(pending) <> 0) AS c"
        )

    def by_activity_query(
        self, namespace: str | None, workflow_id: str, run_id: str | None, activity_id: str
    ) -> tuple[str, tuple[Any, ...]]:
        """The newest attempt's handoff of an activity (None: any namespace, any run)."""
        sql = self.by_activity
        params: tuple[Any, ...] = (workflow_id, activity_id)
        if namespace:
            sql += self.by_activity_namespace
            params += (namespace,)
        if run_id:
            sql += self.by_activity_run
            params += (run_id,)
        return sql + self.by_activity_order, params

    def standalone_query(
        self, namespace: str | None, activity_id: str, activity_run_id: str | None
    ) -> tuple[str, tuple[Any, ...]]:
        """The newest attempt's handoff of a standalone activity (None: any namespace, run)."""
        sql = self.by_standalone
        params: tuple[Any, ...] = (activity_id,)
        if namespace:
            sql += self.by_activity_namespace
            params += (namespace,)
        if activity_run_id:
            sql += self.by_standalone_run
            params += (activity_run_id,)
        return sql + self.by_activity_order, params

    def list_query(self, query: HandoffQuery) -> tuple[str, tuple[Any, ...]]:
        """SQL and parameters of an inventory page.

        Any state is each state's first rows merged in the inventory's order (one arm per
        state, read from that state's index in that order, as far as the page goes), not
        read from an index of every row: that index cost each record a tenth of its writes,
        for this query alone. Each arm has its own limit, so that neither engine reads an
        arm further than the page (PostgreSQL otherwise scanned and sorted them whole)."""
        p = self.placeholder
        conditions: list[str] = []
        params: list[Any] = []
        if query.target is not None:
            conditions.append(f"target = {p}")
            params.append(query.target)
        if query.started_before is not None:
            conditions.append(f"started_at <= {p}")
            params.append(query.started_before)
        if query.handoff_id is not None:
            conditions.append(f"handoff_id = {p}")
            params.append(query.handoff_id)
        if query.workflow_id_prefix is not None:
            # substr, not LIKE: SQLite's LIKE ignores case, and the prefix needs no escaping.
            conditions.append(f"substr(workflow_id, 1, {p}) = {p}")
            params.extend((len(query.workflow_id_prefix), query.workflow_id_prefix))
        if query.after is not None:
            conditions.append(f"(started_at, handoff_id) > ({p}, {p})")
            params.extend(query.after)
        order = f"ORDER BY started_at, handoff_id LIMIT {p}"
        if query.state is not None:
            sql = self._inventory_arm(query.state, conditions) + f" {order}"
            return sql, (*params, query.limit)
        arms = [
            f"SELECT * FROM ({self._inventory_arm(state, conditions)} {order}) AS {state.value}"
            for state in State
        ]
        sql = f"{' UNION ALL '.join(arms)} {order}"
        return sql, (*(*params, query.limit) * len(arms), query.limit)

    def _inventory_arm(self, state: State, conditions: list[str]) -> str:
        # The state, a word of the vocabulary, is written out: a parameter would keep the
        # query off the state's partial indexes.
        where = " AND ".join((f"state = '{state.value}'", *conditions))
        return f"SELECT {RECORD_COLUMNS} FROM {self.handoffs_table} WHERE {where}"
