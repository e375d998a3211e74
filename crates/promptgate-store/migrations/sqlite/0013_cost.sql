-- Cost per invocation (docs/cost.md, shared/API.md "Cost"): the US dollars the call cost at the
-- serving endpoint's configured prices, computed once when the record was made. NULL when that
-- endpoint had no prices, which is also what every row written before this column means.
ALTER TABLE invocations ADD COLUMN cost_usd REAL;
