-- The client API a request came in by (`chat.completions`, `completions`, `embeddings`,
-- `rerank`, `messages` for /v1/messages, `responses` for /v1/responses): the usage event has
-- carried `api` since the router opened those doors (issue 18). Earlier records have NULL.
ALTER TABLE usage_log ADD COLUMN api text;
