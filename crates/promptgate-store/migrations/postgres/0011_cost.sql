-- The same column and meaning as the SQLite schema's 0013_cost.sql: an invocation's cost in US
-- dollars at the serving endpoint's prices; NULL when it had none (and for every older row).
ALTER TABLE invocations ADD COLUMN cost_usd DOUBLE PRECISION;
