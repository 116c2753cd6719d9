-- The trace of the request that wrote each outbox row (W3C traceparent/tracestate), so the relay
-- publishes it as part of that trace: operators follow a send from HTTP through NATS to the worker.
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
